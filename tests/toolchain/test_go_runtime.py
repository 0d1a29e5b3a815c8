"""The Go runtime's own checks (``runtimes/go``): gofmt, go vet and its unit tests, offline.

Its broker behaviour is proven beside Python in ``tests/conformance/test_runtime_go.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .builds import GO_RUNTIME, go_env, go_workspace, have_go, run

pytestmark = pytest.mark.polyglot


def test_the_go_runtime_is_gofmt_clean_vets_and_passes_its_tests(tmp_path: Path) -> None:
    if not have_go():
        pytest.fail("Go and the Debian Go libraries are missing: .ci/run installs them")
    env = go_env(go_workspace(tmp_path, [GO_RUNTIME]))
    assert run([shutil.which("gofmt") or "gofmt", "-l", "."], GO_RUNTIME) == ""
    run(["go", "vet", "./..."], GO_RUNTIME, env=env)
    output = run(["go", "test", "-count=1", "./..."], GO_RUNTIME, env=env)
    assert output.startswith("ok"), output
