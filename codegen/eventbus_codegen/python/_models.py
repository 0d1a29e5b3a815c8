"""Pydantic models for one contract, written by datamodel-code-generator in a sealed room.

datamodel-code-generator (pinned in pyproject) turns a JSON Schema into pydantic v2 source. Left
to its defaults its output depends on the machine: it reads formatter settings from the nearest
pyproject.toml above the working directory, and it treats ``$ref`` to files outside the input's
own folder (our ``../common/...``) as remote references, with a deprecation warning. So each run
happens in a fresh temporary directory holding a pinned pyproject.toml, copies of the shared
documents at their usual paths, and the contract itself at the top; every ``$ref`` is rewritten to
the file path of its target and every ``$id`` removed, so references resolve by file only. Remote
references stay forbidden, no external formatter runs, and any warning is an error: the output
depends on the contract and the pinned generator only.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urldefrag

from datamodel_code_generator import DataModelType, Formatter, InputFileType, PythonVersion, generate
from datamodel_code_generator import Error as DatamodelCodeGeneratorError

from .._contracts import ContractDocument, ContractSet
from .._errors import GenerationError
from .._refs import iter_refs

__all__ = ["LINE_LENGTH", "generate_model_module"]

LINE_LENGTH = 120
# ``{"type": ["string", "null"], "format": "date-time"}``: the format applies to the string branch;
# the generator only says it has no format for null, which changes nothing in its output.
_SHAPE_KEYWORDS = frozenset({"type", "properties", "additionalProperties", "allOf", "anyOf", "oneOf", "items", "enum",
                             "const"})
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
    carries no temporary path.
    """
    with tempfile.TemporaryDirectory(prefix="eventbus-codegen-") as tmp:
        workdir = Path(tmp)
        (workdir / "pyproject.toml").write_text(_PINNED_PYPROJECT, encoding="utf-8")
        tree = workdir / "contracts"
        for schema_id in document.reaches:
            reached = contracts.by_id(schema_id)
            _write_json(tree / reached.relative_path, _rebased(reached, contracts, reached.relative_path.parent))
        entry = tree / document.relative_path.name
        _write_json(entry, _rebased(document, contracts, PurePosixPath(".")))
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
                    type_mappings=["email=string", "idn-email=string", "uri=string", "uri-reference=string",
                                   "iri=string", "iri-reference=string", "uri-template=string"],
                    disable_timestamp=True,
                    custom_file_header=header,
                    formatters=[Formatter.BUILTIN],
                    builtin_format_line_length=LINE_LENGTH,
                    settings_path=workdir,
                    allow_remote_refs=False,
                )
            except DatamodelCodeGeneratorError as exc:
                raise GenerationError(document.path, "", f"datamodel-code-generator failed: {exc}") from None
        for warning in caught:
            if issubclass(warning.category, DeprecationWarning | PendingDeprecationWarning):
                continue  # about the generator's own dependencies, not about this contract or its output
            if _BENIGN_WARNING.search(str(warning.message)):
                continue
            message = str(warning.message).replace(str(workdir), "<tmp>")
            raise GenerationError(document.path, "", f"datamodel-code-generator warned: {message}")
    if not isinstance(source, str):
        raise GenerationError(document.path, "", "datamodel-code-generator returned no single module")
    if str(workdir) in source:
        raise GenerationError(document.path, "", "generated code mentions a temporary path")
    try:
        compile(source, str(document.relative_path), "exec")
    except SyntaxError as exc:
        raise GenerationError(document.path, "", f"generated code does not compile: {exc}") from None
    return source.rstrip("\n") + "\n"


def _rebased(document: ContractDocument, contracts: ContractSet, folder: PurePosixPath) -> dict[str, Any]:
    """A copy of ``document`` to be written in ``folder`` of the tree, its ``$ref`` values as file paths from there.

    ``$id`` is dropped, so the generator resolves every reference by file location, where the
    copies are, and never as a URL.
    """
    schema = copy.deepcopy(dict(document.schema))
    for pointer, target in iter_refs(document.schema, document.schema_id):
        target_id, fragment = urldefrag(target)
        if target_id == document.schema_id:
            rebased = f"#{fragment}"
        else:
            target_path = contracts.by_id(target_id).relative_path
            rebased = f"{posixpath.relpath(target_path, folder)}#{fragment}"
        _set_at_pointer(schema, pointer, rebased)
    schema.pop("$id", None)
    _mark_open_objects(schema)
    if folder == PurePosixPath(".") and "$ref" in schema and not _SHAPE_KEYWORDS & (schema.keys() - {"$ref"}):
        # A contract that is only a $ref would become a type alias; as allOf it becomes a model class
        # (a subclass of the referenced one), which is what a contract's model has to be.
        schema["allOf"] = [{"$ref": schema.pop("$ref")}]
    return schema


def _mark_open_objects(node: Any) -> None:
    """Say ``additionalProperties: true`` where the schema leaves it implied.

    The generator gives such models ``extra="allow"`` only when it is explicit; with it, pydantic
    keeps the keys the schema does not name, so an event read and re-sent in Python is unchanged
    (as in TypeScript and Go), while ``additionalProperties: false`` still means ``extra="forbid"``.
    """
    if isinstance(node, list):
        for item in node:
            _mark_open_objects(item)
        return
    if not isinstance(node, dict):
        return
    if "properties" in node and "additionalProperties" not in node and "unevaluatedProperties" not in node:
        node["additionalProperties"] = True
    for key, value in node.items():
        if key in ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas"):
            if isinstance(value, dict):
                for subschema in value.values():
                    _mark_open_objects(subschema)
        elif key in ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames",
                     "allOf", "anyOf", "oneOf", "prefixItems"):
            _mark_open_objects(value)


def _set_at_pointer(node: Any, pointer: str, value: str) -> None:
    tokens = [token.replace("~1", "/").replace("~0", "~") for token in pointer.split("/")[1:]]
    for token in tokens[:-1]:
        node = node[int(token)] if isinstance(node, list) else node[token]
    node[tokens[-1]] = value


def _write_json(path: Path, schema: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema, indent=2, ensure_ascii=False), encoding="utf-8")
