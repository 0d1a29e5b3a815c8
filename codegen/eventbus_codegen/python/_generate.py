"""``eventbus codegen python``: the ``eventbus_contracts`` package, from the contracts tree.

Stages, as in every generator here: load and check the contracts (``_contracts``), decide the
Python names (``PythonContract``), then fill templates (``templates/*.jinja2``), one per kind of
output file. The models themselves come from datamodel-code-generator (``_models``). Output is a
``{path inside the package: content}`` mapping, deterministic to the byte, that ``write_python``
puts on disk and ``check_python`` compares with what is committed.

Layout of the package::

    eventbus_contracts/
        __init__.py        every event model, every contract constant, REGISTRY
        _registry.py       one EventContract per event (CONVERSATION_ENDED_V1, ...) and REGISTRY
        _schemas.py        every schema as Python data, keyed by $id
        py.typed
        <domain>/__init__.py
        <domain>/<entity>_<action>_v<N>.py     the models of one contract; top model <Title>V<N>
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from .._contracts import ContractDocument, ContractSet, EventMetadata, load_contracts
from .._errors import GenerationError
from .._output import diff_tree, write_tree
from ._literals import python_literal
from ._models import LINE_LENGTH, generate_model_module

__all__ = ["PythonContract", "check_python", "generate_python", "write_python"]

PACKAGE = "eventbus_contracts"
_TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True, slots=True)
class PythonContract:
    """The Python names of one event contract."""

    document: ContractDocument

    @property
    def metadata(self) -> EventMetadata:
        return self.document.event_metadata

    @property
    def module(self) -> str:
        """Dotted path inside the package, e.g. ``chat.conversation_ended_v1``."""
        meta = self.metadata
        return f"{meta.domain}.{meta.entity}_{meta.action}_v{meta.major_version}"

    @property
    def file(self) -> str:
        return self.module.replace(".", "/") + ".py"

    @property
    def class_name(self) -> str:
        """``title`` plus the major version (``ConversationEndedV1``): two majors can live side by side."""
        return f"{self.document.title}V{self.metadata.major_version}"

    @property
    def constant(self) -> str:
        meta = self.metadata
        return f"{meta.entity}_{meta.action}_v{meta.major_version}".upper()

    @property
    def schema_id(self) -> str:
        return self.document.schema_id

    @property
    def resources(self) -> tuple[str, ...]:
        return self.document.reaches


def generate_python(contracts_root: Path) -> dict[str, str]:
    """Every file of the ``eventbus_contracts`` package, by path inside the package, sorted.

    Raises ``ContractLoadError`` or ``GenerationError`` naming the file (and JSON pointer) at fault.
    """
    contracts = load_contracts(contracts_root)
    planned = _plan(contracts)
    contracts_dir = contracts_root.resolve().name
    context: dict[str, Any] = {
        "contracts": planned,
        "contracts_dir": contracts_dir,
        "header": _header(f"{contracts_dir}/"),
    }
    files: dict[str, str] = {"py.typed": ""}
    for contract in planned:
        header = _header(f"{contracts_dir}/{contract.document.relative_path}")
        files[contract.file] = generate_model_module(contracts, contract.document, contract.class_name, header)
    for domain in sorted({contract.metadata.domain for contract in planned}):
        files[f"{domain}/__init__.py"] = _render("domain_init.py.jinja2", context, domain=domain)
    files["_schemas.py"] = _render("schemas.py.jinja2", context, schemas=_schemas_literal(contracts))
    registry_names = sorted([*(contract.constant for contract in planned), "REGISTRY"])
    files["_registry.py"] = _render("registry.py.jinja2", context, exported=registry_names)
    files["__init__.py"] = _render(
        "package_init.py.jinja2",
        context,
        registry_names=registry_names,
        exported=sorted([*registry_names, *(contract.class_name for contract in planned)]),
    )
    return dict(sorted(files.items()))


def write_python(files: Mapping[str, str], out_dir: Path) -> list[Path]:
    """Write the package to ``out_dir`` (the ``eventbus_contracts`` folder); return the files changed.

    Stale generated modules are deleted; a hand-written ``.py`` file in ``out_dir`` stops the
    write with a ``GenerationError`` before anything is touched.
    """
    return write_tree(files, out_dir, suffix=".py")


def check_python(files: Mapping[str, str], out_dir: Path) -> str:
    """The unified diff ``write_python`` would apply to ``out_dir``; ``""`` when it is up to date."""
    return diff_tree(files, out_dir, suffix=".py")


def _plan(contracts: ContractSet) -> list[PythonContract]:
    planned = sorted((PythonContract(doc) for doc in contracts.events), key=lambda contract: contract.module)
    seen: dict[str, PythonContract] = {}
    for contract in planned:
        for name, pointer in ((contract.class_name, "/title"), (contract.constant, "/x-eventbus/type")):
            other = seen.setdefault(name, contract)
            if other is not contract:
                message = f"the generated name {name} is also that of {other.document.relative_path}"
                raise GenerationError(contract.document.path, pointer, message)
    return planned


def _schemas_literal(contracts: ContractSet) -> str:
    by_id = {doc.schema_id: dict(doc.schema) for doc in contracts.documents}
    return python_literal(by_id, width=LINE_LENGTH)


def _header(source: str) -> str:
    return _render("header.jinja2", {}, source=source).rstrip("\n")


def _render(template: str, context: Mapping[str, Any], **extra: Any) -> str:
    return _environment().get_template(template).render({**context, **extra})


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["py"] = python_literal
    return environment
