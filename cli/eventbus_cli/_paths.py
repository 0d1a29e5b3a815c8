"""Where the contracts and the generated output live, found from the working directory."""

from __future__ import annotations

from pathlib import Path

__all__ = ["default_contracts_dir", "default_generated_dir", "default_python_out"]


def _repo_root() -> Path:
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "contracts").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    return here


def default_contracts_dir() -> Path:
    return _repo_root() / "contracts"


def default_generated_dir() -> Path:
    return _repo_root() / "generated"


def default_python_out() -> Path:
    return default_generated_dir() / "python" / "eventbus_contracts"
