"""``eventbus codegen go``: a Go module for every contract, from the type model.

Stages: load the contracts (``_contracts``), build the language-neutral type model
(``_typemodel``), spell it in Go (this module), translate every schema to draft-07 for
gojsonschema (``_draft07``), fill the templates in ``templates/``. The module::

    go.mod          requires the runtime (``runtimes/go``) at RUNTIME_VERSION, and what it requires
    types.go        one struct / enum / union per declaration
    jsonx.go        the JSON helpers the types use (Nullable, open objects, unions)
    schemas.go      every schema, embedded, as draft-07
    contracts.go    Contract per event, Publish<Name> / Subscribe<Name> over the runtime

Everything else (connections, confirms, retries, delays, the consumer) is the runtime's, a Go
module of its own that generated modules import, so two generated modules in one binary share
one ``eventbus.Bus``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._contracts import load_contracts
from .._draft07 import to_draft07
from .._errors import GenerationError
from .._model import (
    NO_DEFAULT,
    AliasDecl,
    AnyJSON,
    ArrayOf,
    Declaration,
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
from .._names import pascal_case
from .._output import diff_tree, write_tree
from .._templates import Renderer
from .._typemodel import build_type_model

__all__ = ["RUNTIME_MODULE", "RUNTIME_VERSION", "check_go", "generate_go", "render_go", "write_go"]

_TEMPLATES = Path(__file__).parent / "templates"
# The runtime library generated modules import (runtimes/go), and the release they require.
RUNTIME_MODULE = "github.com/eventbus-dev/eventbus/runtimes/go"
RUNTIME_VERSION = "v0.2.0"
_MODULE_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]*(/[A-Za-z0-9._~-]+)*")
_GO_KEYWORDS = frozenset({
    "break", "case", "chan", "const", "continue", "default", "defer", "else", "fallthrough", "for", "func", "go",
    "goto", "if", "import", "interface", "map", "package", "range", "return", "select", "struct", "switch", "type",
    "var",
})
# Characters encoding/json accepts in a struct tag name, besides letters and digits.
_TAG_PUNCTUATION = set("!#$%&()*+-./:;<=>?@[]^_{|}~ ")
_EXTRA_FIELD = "AdditionalProperties"


def generate_go(contracts_root: Path, module: str) -> dict[str, str]:
    """Every file of the Go module, by path inside it; deterministic to the byte."""
    contracts = load_contracts(contracts_root)
    model = build_type_model(contracts)
    schemas = {doc.schema_id: to_draft07(doc.schema, doc.path) for doc in contracts.documents}
    return render_go(model, schemas, contracts_root.resolve().name, module)


def package_name(module: str) -> str:
    """The package name a module path implies: its last element as an identifier (``contracts``)."""
    if not _MODULE_PATH.fullmatch(module):
        raise ValueError(f"{module!r} is not a Go module path")
    last = re.sub(r"^v[0-9]+$", "", module.rsplit("/", 1)[-1]) or module.rsplit("/", 2)[-2]
    name = re.sub(r"[^a-z0-9_]", "", last.lower())
    if not name or name[0].isdigit() or name in _GO_KEYWORDS:
        raise ValueError(f"module {module!r} does not end in a usable Go package name")
    return name


def render_go(model: TypeModel, schemas: Mapping[str, Any], contracts_dir: str, module: str) -> dict[str, str]:
    package = package_name(module)
    renderer = Renderer(_TEMPLATES)
    header = renderer.render("header.jinja2", {}, source=f"{contracts_dir}/").rstrip("\n")
    context: dict[str, Any] = {
        "header": header, "contracts_dir": contracts_dir, "package": package, "module": module,
        "runtime_module": RUNTIME_MODULE, "runtime_version": RUNTIME_VERSION,
    }
    speller = _GoSpeller({decl.name: decl for decl in model.declarations})
    declarations = [speller.declaration(decl) for decl in model.declarations]
    contracts = model.contracts
    files = {
        "go.mod": renderer.render("go.mod.jinja2", context),
        "types.go": renderer.render(
            "types.go.jinja2", context, declarations=declarations, imports=sorted(speller.imports),
            aliases=[c for c in contracts if c.is_alias],
        ),
        "schemas.go": renderer.render("schemas.go.jinja2", context, schemas=[
            {"id": json.dumps(schema_id), "text": _raw_json(schema)} for schema_id, schema in sorted(schemas.items())
        ]),
        "contracts.go": renderer.render(
            "contracts.go.jinja2", context, contracts=contracts,
            example=contracts[0].title if contracts else "Event",
            registry=_key_value_lines([(json.dumps(c.type), f"{c.title}Contract,") for c in contracts]),
        ),
        "jsonx.go": renderer.render("jsonx.go.jinja2", context),
    }
    return dict(sorted(files.items()))


def write_go(files: Mapping[str, str], out_dir: Path) -> list[Path]:
    """Write the module to ``out_dir``; stale generated ``.go`` files go, hand-written ones stop it."""
    return write_tree(files, out_dir, suffix=".go")


def check_go(files: Mapping[str, str], out_dir: Path) -> str:
    """The unified diff ``write_go`` would apply; ``""`` when ``out_dir`` is up to date."""
    return diff_tree(files, out_dir, suffix=".go")


def _raw_json(schema: Any) -> str:
    # A Go raw string cannot hold a backtick; in JSON text a backtick can only sit inside a string,
    # where \u0060 means the same.
    return json.dumps(schema, indent=2, ensure_ascii=False).replace("`", "\\u0060")


@dataclass
class _GoSpeller:
    """Spells type expressions and declarations in Go, and remembers which imports that needs."""

    declarations: Mapping[str, Declaration]
    imports: set[str] = field(default_factory=set)

    def type(self, expr: TypeExpr) -> str:
        if isinstance(expr, Scalar):
            if expr.kind == "string":
                if expr.format == "date-time":
                    self.imports.add("time")
                    return "time.Time"
                return "string"
            if expr.kind == "null":
                return self._raw()
            return {"integer": "int64", "number": "float64", "boolean": "bool"}[expr.kind]
        if isinstance(expr, Literal):
            value = expr.value
            if isinstance(value, bool):
                return "bool"
            if isinstance(value, int):
                return "int64"
            return "float64" if isinstance(value, float) else "string"
        if isinstance(expr, AnyJSON):
            return self._raw()
        if isinstance(expr, Nullable):
            inner = self.type(expr.inner)
            return inner if self.nilable(expr.inner) else f"*{inner}"
        if isinstance(expr, ArrayOf):
            return f"[]{self.type(expr.items)}"
        if isinstance(expr, MapOf):
            return f"map[string]{self.type(expr.values)}"
        if isinstance(expr, Named):
            declaration = self.declarations[expr.name]
            if isinstance(declaration, UnionDecl) and declaration.opaque:
                self.imports.add("encoding/json")
            return expr.name
        raise TypeError(expr)

    def _raw(self) -> str:
        self.imports.add("encoding/json")
        return "json.RawMessage"

    def raw(self, expr: TypeExpr) -> bool:
        """Whether the Go type is json.RawMessage (any JSON, null, an opaque union)."""
        return self.nilable(expr) and not isinstance(expr, ArrayOf | MapOf)

    def nilable(self, expr: TypeExpr) -> bool:
        """Whether nil already encodes as JSON null (slices, maps, raw JSON)."""
        if isinstance(expr, AnyJSON | ArrayOf | MapOf) or (isinstance(expr, Scalar) and expr.kind == "null"):
            return True
        if isinstance(expr, Named):
            declaration = self.declarations[expr.name]
            return isinstance(declaration, UnionDecl) and declaration.opaque
        return False

    def field(self, decl: ObjectDecl, item: Field, name: str) -> dict[str, Any]:
        _check_tag(decl, item.json_name)
        inner = item.type.inner if isinstance(item.type, Nullable) else item.type
        tristate = False
        if self.raw(inner):
            # Raw JSON keeps absent (nil, omitted), null and a value apart by itself.
            go_type, omit = self.type(inner), not item.required
        elif item.required:
            go_type, omit = self.type(item.type), False
        elif item.nullable:
            go_type, omit, tristate = f"Nullable[{self.type(inner)}]", False, True
        else:
            go_type, omit = f"*{self.type(inner)}", True
        lines = [item.description or ""]
        if isinstance(inner, Scalar) and inner.format and inner.format != "date-time":
            lines.append(f"Format: {inner.format}.")
        if isinstance(inner, Literal):
            lines.append(f"Always {json.dumps(inner.value, ensure_ascii=False)}.")
        if item.default is not NO_DEFAULT:
            lines.append(f"Default when absent: {json.dumps(item.default, ensure_ascii=False)}.")
        return {
            "name": name,
            "type": go_type,
            "tag": item.json_name + (",omitempty" if omit else ""),
            "json": json.dumps(item.json_name, ensure_ascii=False),
            "doc": _comment(lines, "\t"),
            "tristate": tristate,
        }

    def declaration(self, decl: Declaration) -> dict[str, Any]:
        doc_lines = [f"{decl.name}: {decl.description}" if decl.description else f"{decl.name} is {decl.source}."]
        if decl.description:
            doc_lines.append(f"From {decl.source}.")
        doc = _comment(doc_lines).rstrip("\n")
        if isinstance(decl, AliasDecl):
            return {"kind": "alias", "name": decl.name, "doc": doc, "type": self.type(decl.type)}
        if isinstance(decl, ObjectDecl):
            names = _unique_names([pascal_case(f.json_name) for f in decl.fields], reserved={_EXTRA_FIELD})
            fields = [self.field(decl, f, n) for f, n in zip(decl.fields, names, strict=True)]
            _align(fields, ("name", "type"), lambda f: f"`json:\"{f['tag']}\"`")
            tristate = [f for f in fields if f["tristate"]]
            extra = _EXTRA_FIELD if decl.extra is not None else None
            if tristate or extra:
                self.imports.add("encoding/json")
            presence = _key_value_lines([(f["json"], f"v.{f['name']}.Present,") for f in tristate])
            return {"kind": "object", "name": decl.name, "doc": doc, "fields": fields, "presence": presence,
                    "extra_field": extra, "custom": bool(tristate or extra)}
        if isinstance(decl, EnumDecl):
            member_names = _unique_names([decl.name + pascal_case(str(v)) for v in decl.values], reserved=set())
            members = [{"name": n, "type": decl.name, "doc": "", "value": json.dumps(v, ensure_ascii=False)}
                       for n, v in zip(member_names, decl.values, strict=True)]
            _align(members, ("name", "type"), lambda m: f"= {m['value']}")
            base = "string" if decl.kind == "string" else "int64"
            return {"kind": "enum", "name": decl.name, "doc": doc, "base": base, "members": members}
        if decl.opaque:
            self.imports.add("encoding/json")
            return {"kind": "opaque", "name": decl.name, "doc": doc}
        self.imports.update({"encoding/json", "fmt"})
        kinds = [v.kind for v in decl.variants]
        variant_names = _unique_names([self._variant_name(decl.name, v.type, v.kind) for v in decl.variants],
                                      reserved=set())
        variants = []
        for variant, name in zip(decl.variants, variant_names, strict=True):
            matched = [variant.kind]
            if variant.kind == "number" and "integer" not in kinds:
                matched.append("integer")
            variants.append({
                "name": name,
                "doc": "",
                "pointer": f"*{self.type(variant.type)}",
                "type": self.type(variant.type),
                "tag": json.dumps(variant.tag, ensure_ascii=False) if variant.tag is not None else "",
                "kinds": ", ".join(json.dumps(k) for k in matched),
            })
        _align(variants, ("name",), lambda v: v["pointer"])
        return {"kind": "union", "name": decl.name, "doc": doc, "variants": variants,
                "discriminator": decl.discriminator,
                "discriminator_json": json.dumps(decl.discriminator) if decl.discriminator else ""}

    def _variant_name(self, union: str, expr: TypeExpr, kind: str) -> str:
        """``Circle`` for ``EverythingChangedV1Circle`` in ``EverythingChangedV1Shape``: past the shared prefix."""
        if not isinstance(expr, Named):
            return pascal_case(kind)
        size = next((i for i, (a, b) in enumerate(zip(union, expr.name, strict=False)) if a != b),
                    min(len(union), len(expr.name)))
        prefix = expr.name[:size]
        while prefix and not expr.name[len(prefix):][:1].isupper():
            prefix = prefix[:-1]
        return expr.name[len(prefix):] or expr.name


def _align(rows: list[dict[str, Any]], columns: tuple[str, ...], last: Any) -> None:
    """Set each row's ``line`` to its columns padded as gofmt pads them.

    gofmt aligns the columns of consecutive lines; a comment line in between starts a new block.
    """
    blocks: list[list[dict[str, Any]]] = []
    for row in rows:
        if row["doc"] or not blocks:
            blocks.append([])
        blocks[-1].append(row)
    for block in blocks:
        widths = [max(len(row[column]) for row in block) for column in columns]
        for row in block:
            cells = [row[column].ljust(width) for column, width in zip(columns, widths, strict=True)]
            row["line"] = " ".join([*cells, last(row)])


def _key_value_lines(pairs: list[tuple[str, str]]) -> list[str]:
    """``key: value`` lines of a composite literal, values aligned as gofmt aligns them."""
    width = max((len(key) for key, _ in pairs), default=0) + 1
    return [f"{(key + ':').ljust(width)} {value}" for key, value in pairs]


def _check_tag(decl: ObjectDecl, name: str) -> None:
    if name and all(ch.isalnum() or ch in _TAG_PUNCTUATION for ch in name):
        return
    raise GenerationError(
        Path(decl.source.split("#")[0]), decl.source.partition("#")[2] + "/properties",
        f"property name {name!r} cannot be a Go json struct tag (encoding/json allows letters, digits and "
        f"{''.join(sorted(_TAG_PUNCTUATION)).strip()!r} only)",
    )


def _unique_names(names: list[str], reserved: set[str]) -> list[str]:
    taken = set(reserved)
    result = []
    for name in names:
        candidate, counter = name, 2
        while candidate in taken:
            candidate, counter = f"{name}{counter}", counter + 1
        taken.add(candidate)
        result.append(candidate)
    return result


def _comment(lines: list[str], indent: str = "") -> str:
    text = [part for line in lines if line for part in line.splitlines()]
    return "".join(f"{indent}// {part}".rstrip() + "\n" for part in text)
