"""The TypeScript and Go generators: golden output, determinism, clear errors, and code that compiles.

Golden files hold the types generated for the type-mapping fixture (``typemap_contracts``); after
an intended change, regenerate them with ``EVENTBUS_UPDATE_GOLDEN=1 pytest tests/codegen``.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
from pathlib import Path

import pytest

from eventbus_codegen import GenerationError, generate_go, generate_typescript, write_go, write_typescript
from tests.toolchain.builds import go_env, go_workspace, have_go, link_node_modules, run, tsc

from .conftest import CONTRACTS, EditSchema

TYPEMAP = Path(__file__).parent / "typemap_contracts"
GOLDEN = Path(__file__).parent / "golden" / "typemap"
ENDED = "chat/conversation.ended.v1.schema.json"


def _golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("EVENTBUS_UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True), str(path), "generated"))
    assert not diff, f"{name} differs from its golden file (EVENTBUS_UPDATE_GOLDEN=1 to accept):\n{diff}"


def test_typescript_types_match_the_golden_file() -> None:
    _golden("types.ts", generate_typescript(TYPEMAP)["src/types.ts"])


def test_go_types_match_the_golden_file() -> None:
    _golden("types.go", generate_go(TYPEMAP, "example.com/typemap")["types.go"])


def test_output_is_deterministic() -> None:
    assert generate_typescript(CONTRACTS) == generate_typescript(CONTRACTS)
    assert generate_go(CONTRACTS, "example.com/x") == generate_go(CONTRACTS, "example.com/x")


def test_go_refuses_property_names_encoding_json_cannot_tag(contracts_copy: Path, edit_schema: EditSchema) -> None:
    path = edit_schema(ENDED, lambda s: s["properties"].__setitem__("a,b", {"type": "string"}))
    with pytest.raises(GenerationError) as caught:
        generate_go(contracts_copy, "example.com/x")
    assert caught.value.path.as_posix().endswith(ENDED) or caught.value.path.name == path.name
    assert "'a,b' cannot be a Go json struct tag" in caught.value.message


@pytest.mark.parametrize("module", ["", "example.com/go", "has space/x", "example.com/9lives"])
def test_go_refuses_module_paths_without_a_package_name(module: str) -> None:
    with pytest.raises(ValueError, match="module"):
        generate_go(CONTRACTS, module)


def test_typescript_refuses_invalid_package_names() -> None:
    with pytest.raises(ValueError, match="npm package name"):
        generate_typescript(CONTRACTS, "Not Valid")


@pytest.mark.polyglot
def test_typescript_compiles_strict_with_no_any_in_public_types(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    write_typescript(generate_typescript(TYPEMAP, "typemap"), package)
    link_node_modules(tmp_path)
    tsc(package)
    declarations = {p: p.read_text() for p in (package / "dist").rglob("*.d.ts")}
    assert declarations
    offenders = [f"{p.name}: {line.strip()}" for p, text in declarations.items() for line in text.splitlines()
                 if re.search(r"\bany\b", line) and not line.strip().startswith(("/*", "*", "//"))]
    assert not offenders


@pytest.mark.polyglot
def test_go_module_vets_and_is_gofmt_clean(tmp_path: Path) -> None:
    if not have_go():
        pytest.fail("Go and the Debian Go libraries are missing: .ci/run installs them")
    module = tmp_path / "module"
    write_go(generate_go(TYPEMAP, "example.com/typemap"), module)
    run(["go", "vet", "./..."], module, env=go_env(go_workspace(tmp_path, [module])))
    assert run([shutil.which("gofmt") or "gofmt", "-l", "."], module) == ""
