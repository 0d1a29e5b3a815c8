"""``eventbus codegen typescript``: an npm package for every contract, from the type model.

Stages: load the contracts (``_contracts``), build the language-neutral type model
(``_typemodel``), spell it in TypeScript (this module), fill the templates in ``templates/``.
The package::

    package.json, tsconfig.json     ESM; depends on the runtime (@eventbus/runtime); strict compile to dist/
    src/index.ts                    everything public, the runtime's API re-exported
    src/types.ts                    one interface / union / enum type per declaration
    src/schemas.ts                  every schema, embedded, keyed by $id
    src/contracts.ts                EventContract per event, publish<Name> / subscribe<Name>

Everything that moves bytes (envelope, validation, confirms, retries, delays, reconnect) lives in
the hand-written, versioned runtime library (``runtimes/typescript``), as protobuf's generated code
leans on its runtime: the package holds only what differs per contract set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._contracts import load_contracts
from .._model import (
    NO_DEFAULT,
    AliasDecl,
    AnyJSON,
    ArrayOf,
    EnumDecl,
    Field,
    Literal,
    MapOf,
    Named,
    Nullable,
    ObjectDecl,
    Scalar,
    TypeExpr,
    TypeModel,
    UnionDecl,
)
from .._output import diff_tree, write_tree
from .._templates import Renderer
from .._typemodel import build_type_model

__all__ = ["DEFAULT_PACKAGE_NAME", "check_typescript", "generate_typescript", "write_typescript"]

DEFAULT_PACKAGE_NAME = "eventbus-contracts"
_TEMPLATES = Path(__file__).parent / "templates"
_RUNTIME_PACKAGE = "@eventbus/runtime"
_RUNTIME_VERSION = "^0.2.0"
_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_PACKAGE_NAME = re.compile(r"(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*")
_SCALARS = {"string": "string", "integer": "number", "number": "number", "boolean": "boolean", "null": "null"}


def generate_typescript(contracts_root: Path, package_name: str = DEFAULT_PACKAGE_NAME) -> dict[str, str]:
    """Every file of the package, by path inside it; deterministic to the byte."""
    if not _PACKAGE_NAME.fullmatch(package_name):
        raise ValueError(f"{package_name!r} is not a valid npm package name")
    model = build_type_model(load_contracts(contracts_root))
    return render_typescript(model, contracts_root.resolve().name, package_name)


def render_typescript(model: TypeModel, contracts_dir: str, package_name: str) -> dict[str, str]:
    renderer = Renderer(_TEMPLATES, {"doc": lambda text: _doc([text])})
    header = renderer.render("header.jinja2", {}, source=f"{contracts_dir}/").rstrip("\n")
    context: dict[str, Any] = {
        "header": header, "contracts_dir": contracts_dir, "package_name": package_name,
        "runtime": _RUNTIME_PACKAGE, "runtime_version": _RUNTIME_VERSION,
    }
    files = {
        "package.json": renderer.render("package.json.jinja2", context),
        "tsconfig.json": renderer.render("tsconfig.json.jinja2", context),
        "src/index.ts": renderer.render("index.ts.jinja2", context),
        "src/types.ts": renderer.render(
            "types.ts.jinja2",
            context,
            declarations=[_declaration_view(declaration) for declaration in model.declarations],
            aliases=[contract for contract in model.contracts if contract.is_alias],
        ),
        "src/schemas.ts": renderer.render("schemas.ts.jinja2", context, schemas=json.dumps(
            model.schemas, indent=2, ensure_ascii=False)),
        "src/contracts.ts": renderer.render("contracts.ts.jinja2", context, contracts=model.contracts),
    }
    return dict(sorted(files.items()))


def write_typescript(files: Mapping[str, str], out_dir: Path) -> list[Path]:
    """Write the package to ``out_dir``; stale generated ``.ts`` files go, hand-written ones stop it."""
    return write_tree(files, out_dir, suffix=".ts")


def check_typescript(files: Mapping[str, str], out_dir: Path) -> str:
    """The unified diff ``write_typescript`` would apply; ``""`` when ``out_dir`` is up to date."""
    return diff_tree(files, out_dir, suffix=".ts")


def ts_type(expr: TypeExpr) -> str:
    """How a type expression is spelt in TypeScript."""
    if isinstance(expr, Scalar):
        return _SCALARS[expr.kind]
    if isinstance(expr, Literal):
        return json.dumps(expr.value, ensure_ascii=False)
    if isinstance(expr, AnyJSON):
        return "JsonValue"
    if isinstance(expr, Nullable):
        return f"{ts_type(expr.inner)} | null"
    if isinstance(expr, ArrayOf):
        inner = ts_type(expr.items)
        return f"{inner}[]" if _IDENTIFIER.fullmatch(inner) else f"Array<{inner}>"
    if isinstance(expr, MapOf):
        return f"Record<string, {ts_type(expr.values)}>"
    if isinstance(expr, Named):
        return expr.name
    raise TypeError(expr)


def ts_key(name: str) -> str:
    """A property name as an interface key: bare when it is an identifier, else a string literal."""
    return name if _IDENTIFIER.fullmatch(name) else json.dumps(name, ensure_ascii=False)


def _doc(lines: list[str], indent: str = "") -> str:
    lines = [line for line in lines if line]
    if not lines:
        return ""
    body = [text.replace("*/", "*\\/") for line in lines for text in line.splitlines()]
    if len(body) == 1:
        return f"{indent}/** {body[0]} */\n"
    return f"{indent}/**\n" + "".join(f"{indent} * {text}".rstrip() + "\n" for text in body) + f"{indent} */\n"


def _field_doc(field: Field) -> str:
    lines = [field.description or ""]
    expr = field.type.inner if isinstance(field.type, Nullable) else field.type
    if isinstance(expr, Scalar) and expr.format:
        lines.append(f"Format: {expr.format}.")
    if field.default is not NO_DEFAULT:
        lines.append(f"@default {json.dumps(field.default, ensure_ascii=False)}")
    return _doc(lines, "  ")


def _declaration_view(declaration: ObjectDecl | EnumDecl | UnionDecl | AliasDecl) -> dict[str, Any]:
    doc = _doc([declaration.description or "", f"From {declaration.source}."])
    if isinstance(declaration, AliasDecl):
        return {"kind": "alias", "name": declaration.name, "doc": doc, "type": ts_type(declaration.type)}
    if isinstance(declaration, ObjectDecl):
        fields = [
            {"doc": _field_doc(field), "key": ts_key(field.json_name), "required": field.required,
             "type": ts_type(field.type)}
            for field in declaration.fields
        ]
        return {"kind": "object", "name": declaration.name, "doc": doc, "fields": fields,
                "open": declaration.extra is not None}
    if isinstance(declaration, EnumDecl):
        members = [json.dumps(value, ensure_ascii=False) for value in declaration.values]
        return {"kind": "enum", "name": declaration.name, "doc": doc, "members": members}
    members = [ts_type(variant.type) for variant in declaration.variants]
    if declaration.discriminator:
        doc = _doc([declaration.description or "", f"Tagged by {declaration.discriminator!r}.",
                    f"From {declaration.source}."])
    return {"kind": "union", "name": declaration.name, "doc": doc, "members": members}
