"""The contracts tree as it was at a git ref, unpacked into a folder the loader can read.

``git archive`` of the ref, limited to the contracts folder, extracted with tarfile's ``data``
filter (no links out of the folder, no devices). A ref that does not resolve is a clear error
that says when the clone is shallow, since that is the usual reason in CI; a ref that predates
the contracts folder yields an empty tree (everything is new, nothing can break).
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

from .._errors import GitRefError

__all__ = ["tree_at"]


def tree_at(contracts_root: Path, ref: str, destination: Path) -> Path:
    """Unpack ``contracts_root`` as of ``ref`` under ``destination``; return the unpacked tree's root."""
    root = contracts_root.resolve()
    if not root.is_dir():
        raise GitRefError(contracts_root, "", "contracts directory not found")
    toplevel = Path(_git(root, "rev-parse", "--show-toplevel", error=f"{root} is not inside a git repository"))
    try:
        commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", error=f"unknown git ref {ref!r}")
    except GitRefError as exc:
        raise GitRefError(root, "", exc.message + _shallow_hint(root)) from None
    relative = root.relative_to(toplevel.resolve()).as_posix()
    unpacked = destination / relative
    unpacked.mkdir(parents=True, exist_ok=True)
    if not _git(toplevel, "ls-tree", "--name-only", commit, "--", relative, error="git ls-tree failed"):
        return unpacked  # the folder did not exist yet at the ref
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "--", relative], cwd=toplevel, capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise GitRefError(root, "", f"git archive {ref} failed: {archive.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="data")
    return unpacked


def _git(cwd: Path, *args: str, error: str) -> str:
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise GitRefError(cwd, "", "git is not installed") from None
    if result.returncode != 0:
        raise GitRefError(cwd, "", error)
    return result.stdout.strip()


def _shallow_hint(root: Path) -> str:
    shallow = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=root, capture_output=True,
                             text=True, check=False).stdout.strip() == "true"
    return " (this clone is shallow: fetch more history, e.g. 'git fetch --deepen=1')" if shallow else ""
