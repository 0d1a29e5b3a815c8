"""The Node runtime's own checks, run with the rest of the suite: ``tsc --strict``, eslint, ``node --test``
and ``npm pack`` (what `npm run check` runs in ``runtimes/typescript``)."""

from __future__ import annotations

import json

import pytest

from .builds import ensure_runtime, run

pytestmark = pytest.mark.polyglot


def test_the_runtime_compiles_strict_lints_clean_and_its_unit_tests_pass() -> None:
    runtime = ensure_runtime()
    run(["npm", "run", "--silent", "build"], runtime)
    run(["npm", "run", "--silent", "lint"], runtime)
    output = run(["npm", "run", "--silent", "test"], runtime)
    assert "# fail 0" in output and "# pass 0" not in output, output


def test_npm_pack_gives_a_tarball_with_the_esm_build_and_its_declarations() -> None:
    runtime = ensure_runtime()
    (packed,) = json.loads(run(["npm", "pack", "--dry-run", "--json", "--ignore-scripts"], runtime))
    assert packed["name"] == "@eventbus/runtime"
    files = {entry["path"] for entry in packed["files"]}
    assert {"package.json", "dist/index.js", "dist/index.d.ts", "dist/bus.js", "src/bus.ts"} <= files
    assert not any(path.startswith(("test/", "build/", "node_modules/")) for path in files)
