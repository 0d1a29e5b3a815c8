"""The wheel ``python -m build`` makes, installed with its codegen extra in a fresh venv, once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .._vhosts import amqp_url, private_vhost

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Installed:
    """A venv holding only the built wheel and its dependencies: no source tree on its path."""

    venv: Path
    wheel: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def run(self, *args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
        environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EVENTBUS_CONFIG",
                                                                         "VIRTUAL_ENV")}
        environment["PATH"] = f"{self.bin}{os.pathsep}{environment.get('PATH', '')}"
        environment.update(env or {})
        return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environment)


def _check(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    _check(subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(base / "dist"), str(ROOT)],
                          capture_output=True, text=True, timeout=300))
    (wheel,) = (base / "dist").glob("eventbus-*.whl")
    venv = base / "venv"
    _check(subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, timeout=120))
    result = Installed(venv, wheel)
    _check(result.run(str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[codegen]", cwd=base, timeout=600))
    return result


@pytest.fixture
def vhost_url() -> Iterator[str]:
    with private_vhost("newteam") as vhost:
        yield amqp_url(vhost)
