"""Pydantic models for one contract, written by datamodel-code-generator in a sealed room.

datamodel-code-generator (pinned in pyproject) turns a JSON Schema into pydantic v2 source. Left
to its defaults its output depends on the machine: it reads formatter settings from the nearest
pyproject.toml above the working directory, and it follows ``$ref``s to files and URLs. So each
run happens in a fresh temporary directory holding a pinned pyproject.toml and one self-contained
schema: the contract with every subschema it reaches copied into ``$defs`` (``_bundle``), no
``$id``, every reference local. Remote references stay forbidden and no external formatter runs:
the output depends on the contract and the pinned generator only, and its size on what the
contract reaches. Before the generator sees the schema, a few spellings it would turn into models
stricter than the schema are rewritten (implied open objects made explicit, ``null`` narrowing in
``allOf`` left to the validator, object defaults left out); its warnings become ``CodegenWarning``s.
"""

from __future__ import annotations

import json
import re
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datamodel_code_generator import DataModelType, Formatter, InputFileType, PythonVersion, generate
from datamodel_code_generator import Error as DatamodelCodeGeneratorError

from .._bundle import bundle_contract
from .._contracts import ContractDocument, ContractSet
from .._errors import GenerationError, warn
from .._refs import iter_subschemas

__all__ = ["LINE_LENGTH", "generate_model_module"]

LINE_LENGTH = 120
# ``{"type": ["string", "null"], "format": "date-time"}``: the format applies to the string branch;
# the generator only says it has no format for null, which changes nothing in its output.
_SHAPE_KEYWORDS = frozenset({"type", "properties", "additionalProperties", "allOf", "anyOf", "oneOf", "items", "enum",
                             "const"})
_TYPE_MAPPINGS = ["email=string", "idn-email=string", "uri=string", "uri-reference=string", "iri=string",
                  "iri-reference=string", "uri-template=string"]
_BENIGN_WARNING = re.compile(r"format of '[^']*' not understood for 'null'")

# Nearest pyproject.toml for the generator's built-in formatter, so no project around the
# temporary directory (or the user's home) can change the output.
_PINNED_PYPROJECT = f"""\
[tool.datamodel-codegen]
builtin-format-line-length = {LINE_LENGTH}
"""


def generate_model_module(contracts: ContractSet, document: ContractDocument, class_name: str, header: str) -> str:
    """The source of the module holding ``document``'s models, its top model named ``class_name``.

    ``header`` replaces the generator's own header (which names the input file) so the output
    carries no temporary path. The generator sees one self-contained schema holding only what the
    contract reaches (``bundle_contract``), so it writes one module and its time and output grow
    with the contract, not with the shared documents it points into. Its warnings are reported as
    Python warnings (``CodegenWarning``) naming the contract, not raised: the JSON Schema stays the
    authority at run time.
    """
    schema = bundle_contract(contracts, document)
    _mark_open_objects(schema)
    _accept_null_where_allowed(schema)
    _drop_structured_defaults(schema)
    if "$ref" in schema and not _SHAPE_KEYWORDS & (schema.keys() - {"$ref"}):
        # A contract that is only a $ref would become a type alias; as allOf it becomes a model class
        # (a subclass of the referenced one), which is what a contract's model has to be.
        schema["allOf"] = [{"$ref": schema.pop("$ref")}]
    with tempfile.TemporaryDirectory(prefix="eventbus-codegen-") as tmp:
        workdir = Path(tmp)
        (workdir / "pyproject.toml").write_text(_PINNED_PYPROJECT, encoding="utf-8")
        entry = workdir / "contract.schema.json"
        _write_json(entry, schema)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                source = generate(
                    entry,
                    input_file_type=InputFileType.JsonSchema,
                    output_model_type=DataModelType.PydanticV2BaseModel,
                    target_python_version=PythonVersion.PY_311,
                    class_name=class_name,
                    # Shared scalars (user ids, timestamps) become plain annotated types, not RootModel
                    # wrappers: ``collapse_root_models`` inlines them into fields, and ``use_type_alias``
                    # turns the ones it keeps (list items) into TypeAliasType, which is ``str`` at run time.
                    collapse_root_models=True,
                    use_type_alias=True,
                    use_annotated=True,
                    field_constraints=True,
                    use_standard_collections=True,
                    use_union_operator=True,
                    use_double_quotes=True,
                    use_schema_description=True,
                    use_field_description=True,
                    # No extra_fields: the generator forbids extra fields exactly where the schema says
                    # additionalProperties is false, which is what the JSON Schema validator enforces too.
                    # Formats with a normalizing pydantic type (AnyUrl adds a trailing "/", EmailStr needs
                    # email-validator) stay plain strings, as in TypeScript and Go: the JSON Schema validator
                    # checks the format, and the value round-trips unchanged.
                    type_mappings=_TYPE_MAPPINGS,
                    disable_timestamp=True,
                    custom_file_header=header,
                    formatters=[Formatter.BUILTIN],
                    builtin_format_line_length=LINE_LENGTH,
                    settings_path=workdir,
                    allow_remote_refs=False,
                )
            except DatamodelCodeGeneratorError as exc:
                raise GenerationError(document.path, "", f"datamodel-code-generator failed: {exc}") from None
            except RecursionError:
                message = "datamodel-code-generator ran out of recursion depth"
                raise GenerationError(document.path, "", message) from None
            except Exception as exc:  # the generator's own faults on odd schemas: name the contract, do not crash
                message = f"datamodel-code-generator crashed: {type(exc).__name__}: {exc}"
                raise GenerationError(document.path, "", message) from None
        for warning in caught:
            if issubclass(warning.category, DeprecationWarning | PendingDeprecationWarning):
                continue  # about the generator's own dependencies, not about this contract or its output
            if _BENIGN_WARNING.search(str(warning.message)):
                continue
            message = str(warning.message).replace(str(workdir), "<tmp>")
            warn(document.path, "", f"datamodel-code-generator: {message}")
    if isinstance(source, dict):
        # Output split into modules despite the single input: keep the one holding the contract's model.
        source = next((text for text in source.values() if re.search(rf"^class {class_name}\b", text, re.M)), None)
    if not isinstance(source, str):
        raise GenerationError(document.path, "", "datamodel-code-generator returned no single module")
    if str(workdir) in source:
        raise GenerationError(document.path, "", "generated code mentions a temporary path")
    source = _model_class_for_any_root(source, class_name)
    try:
        compile(source, str(document.relative_path), "exec")
    except SyntaxError as exc:
        raise GenerationError(document.path, "", f"generated code does not compile: {exc}") from None
    return source.rstrip("\n") + "\n"


def _model_class_for_any_root(source: str, class_name: str) -> str:
    """Make the contract's top type a model class, whatever the root schema is.

    A root that is not an object (an array, a string, a union) comes out as a type alias, and an
    ``EventContract`` needs a class to attach to: the alias is renamed ``<Name>Value`` and the
    contract's name becomes ``RootModel[<Name>Value]``, which validates and dumps the bare JSON value.
    """
    if re.search(rf"^class {class_name}\((?![^)]*Enum\))", source, re.M):
        return source  # a model class (BaseModel, RootModel or a subclass of another model)
    renamed = re.sub(rf"\b{class_name}\b", f"{class_name}Value", source)
    imports = re.search(r"^from pydantic import (.*)$", renamed, re.M)
    if imports is None:
        renamed = renamed.replace("from __future__ import annotations\n",
                                  "from __future__ import annotations\n\nfrom pydantic import RootModel\n", 1)
    elif "RootModel" not in imports[1].split(", "):
        renamed = renamed.replace(imports[0], f"from pydantic import {imports[1]}, RootModel", 1)
    return (renamed.rstrip("\n") + f"\n\n\nclass {class_name}(RootModel[{class_name}Value]):\n"
            f'    """The data of the contract: a JSON value that is not an object."""\n')


def _accept_null_where_allowed(node: Any) -> None:
    """Spell ``allOf [X, {type: null}]``-style nullability the one way the generator keeps: ``anyOf [X, null]``.

    datamodel-code-generator merges ``allOf [..., {type: null}]`` parts into a required value and
    drops the null the JSON Schema allows; as ``anyOf`` the model accepts it.
    """
    for _, schema, _ in iter_subschemas(node, ""):
        parts = schema.get("allOf")
        if isinstance(parts, list) and len(parts) > 1:
            # A part that narrows a property of another part to null ({dismissed_at: {type: null}}):
            # the generator would keep the other part's type and refuse the null, so the narrowing
            # is left to the validator and the field keeps the wider (nullable) type.
            for part in parts:
                properties = part.get("properties") if isinstance(part, dict) else None
                if isinstance(properties, dict):
                    for name in [name for name, value in properties.items() if _is_null(value)]:
                        del properties[name]
        if isinstance(parts, list) and len(parts) > 1 and any(_is_null(part) for part in parts):
            rest = {key: value for key, value in schema.items() if key != "allOf"}
            kept = [part for part in parts if not _is_null(part)]
            schema.clear()
            schema["anyOf"] = [{**rest, "allOf": kept}, {"type": "null"}]


def _drop_structured_defaults(node: Any) -> None:
    """Leave object and array ``default``s out of the models.

    A default is an annotation (validation never applies it, and the models dump only what was set),
    but the generator validates an object default against the field's model: on a recursive schema
    (a meta-schema whose ``items`` defaults to ``{}``) that validation never ends.
    """
    for _, schema, _ in iter_subschemas(node, ""):
        if isinstance(schema.get("default"), dict | list):
            del schema["default"]


def _is_null(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") == "null"


def _mark_open_objects(node: Any) -> None:
    """Say ``additionalProperties: true`` where the schema leaves it implied.

    The generator gives such models ``extra="allow"`` only when it is explicit; with it, pydantic
    keeps the keys the schema does not name, so an event read and re-sent in Python is unchanged
    (as in TypeScript and Go), while ``additionalProperties: false`` still means ``extra="forbid"``.
    A merged ``allOf`` is open unless one of its parts is closed.
    """
    for _, schema, _ in iter_subschemas(node, ""):
        if "additionalProperties" in schema or "unevaluatedProperties" in schema:
            continue
        parts = schema.get("allOf")
        parts = [part for part in parts if isinstance(part, dict)] if isinstance(parts, list) else []
        objects = any("properties" in part or part.get("type") == "object" for part in parts)
        closed = any(part.get("additionalProperties") is False for part in parts)
        if "properties" in schema or (objects and not closed):
            schema["additionalProperties"] = True


def _write_json(path: Path, schema: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema, indent=2, ensure_ascii=False), encoding="utf-8")
