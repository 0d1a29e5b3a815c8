"""Building generated TypeScript and Go code in tests, once per session, with no network.

Node: ``tests/toolchain/package.json`` + its lockfile pin TypeScript, amqplib, Ajv and the corpus's
public schema packages; ``.ci/run`` installs them with ``npm ci`` (``ensure_node_modules`` does
the same when they are missing). The runtime library the generated packages import
(``runtimes/typescript``, ``@eventbus/runtime``) is installed from its own lockfile and built by
``ensure_runtime``. A build folder gets a ``node_modules`` of links to both, so Node and tsc
resolve packages as they would in a user's project after ``npm install``.

Go: Debian's golang-go with Debian-packaged libraries (no module proxy is reachable here). The
generated go.mod names the real module versions, the runtime (``runtimes/go``) among them; a build
folder gets a ``go.work`` that uses the local runtime module and replaces every library with a
copy of the Debian sources (``/usr/share/gocode/src``) carrying a minimal go.mod, since some
Debian copies have none and others require test-only modules.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from eventbus_codegen.go import RUNTIME_MODULE, RUNTIME_VERSION

__all__ = [
    "GO_DEPENDENCIES",
    "GO_RUNTIME",
    "TOOLCHAIN",
    "BuildError",
    "RUNTIME",
    "ensure_node_modules",
    "ensure_runtime",
    "go_env",
    "go_workspace",
    "have_go",
    "link_node_modules",
    "run",
    "tsc",
    "write_files",
]

TOOLCHAIN = Path(__file__).resolve().parent
GO_RUNTIME = TOOLCHAIN.parents[1] / "runtimes" / "go"  # the runtime every generated Go module imports
RUNTIME = TOOLCHAIN.parents[1] / "runtimes" / "typescript"
DEBIAN_GOCODE = Path("/usr/share/gocode/src")
# Module path → the version the generated go.mod requires (what Debian ships).
GO_DEPENDENCIES = {
    "github.com/gomodule/redigo": "v1.8.3",
    "github.com/google/uuid": "v1.3.0",
    "github.com/rabbitmq/amqp091-go": "v1.5.0",
    "github.com/xeipuuv/gojsonschema": "v1.2.0",
    "github.com/xeipuuv/gojsonpointer": "v0.0.0-20190905194746-02993c407bfb",
    "github.com/xeipuuv/gojsonreference": "v0.0.0-20180127040603-bd5ef7bd5415",
}


class BuildError(AssertionError):
    """A compile or tool run failed; the message carries its output."""


def run(args: Sequence[str], cwd: Path, *, env: Mapping[str, str] | None = None, timeout: float = 300) -> str:
    result = subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    if result.returncode != 0:
        raise BuildError(f"{' '.join(args)} failed in {cwd} ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def ensure_node_modules() -> Path:
    """The toolchain's node_modules, installed from the lockfile if they are not there yet."""
    modules = TOOLCHAIN / "node_modules"
    if not (modules / ".package-lock.json").is_file():
        run(["npm", "ci", "--no-audit", "--no-fund"], TOOLCHAIN, timeout=600)
    return modules


def ensure_runtime() -> Path:
    """``runtimes/typescript`` with its dependencies installed (``npm ci``, once per lockfile) and
    ``dist/`` built from the current sources; safe to call from parallel test processes."""
    modules = RUNTIME / "node_modules"
    stamp = modules / ".lock-sha256"
    with (Path(tempfile.gettempdir()) / "eventbus-runtime-build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        digest = hashlib.sha256((RUNTIME / "package-lock.json").read_bytes()).hexdigest()
        if not stamp.is_file() or stamp.read_text() != digest:
            run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], RUNTIME, timeout=600)
            stamp.write_text(digest)
        built = RUNTIME / "dist" / "index.js"
        newest = max(path.stat().st_mtime for path in (RUNTIME / "src").glob("*.ts"))
        if not built.is_file() or built.stat().st_mtime < newest:
            run(["node", str(modules / "typescript" / "bin" / "tsc"), "-p", "tsconfig.json"], RUNTIME)
    return RUNTIME


def link_node_modules(folder: Path) -> None:
    """A ``node_modules`` in ``folder`` with the toolchain's packages and ``@eventbus/runtime``, as links."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "node_modules"
    if target.exists():
        return
    toolchain = ensure_node_modules()
    runtime = ensure_runtime()
    target.mkdir()
    for entry in toolchain.iterdir():  # .bin included: npm scripts find tsc there
        (target / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    (target / "@eventbus").mkdir()
    (target / "@eventbus" / "runtime").symlink_to(runtime, target_is_directory=True)


def tsc(project: Path) -> str:
    """Compile a TypeScript project with the pinned compiler; BuildError with the diagnostics if it fails."""
    compiler = ensure_node_modules() / "typescript" / "bin" / "tsc"
    return run(["node", str(compiler), "-p", str(project)], project)


def write_files(files: Mapping[str, str], folder: Path) -> Path:
    for relative, content in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return folder


def have_go() -> bool:
    return shutil.which("go") is not None and all((DEBIAN_GOCODE / module).is_dir() for module in GO_DEPENDENCIES)


def go_workspace(folder: Path, modules: Iterable[Path]) -> Path:
    """A go.work in ``folder`` using ``modules`` and the local runtime, every library replaced by its Debian copy."""
    deps = folder / "go-deps"
    lines = ["go 1.19", "", "use ("]
    used = {module.resolve() for module in modules} | {GO_RUNTIME}
    lines += [f"\t{module}" for module in sorted(used)]
    # The generated go.mod requires the runtime at a release; Go still reads that release's go.mod
    # even though the workspace uses the local copy, so it is replaced with the local copy too.
    lines += [")", "", "replace (", f"\t{RUNTIME_MODULE} {RUNTIME_VERSION} => {GO_RUNTIME}"]
    for module, version in sorted(GO_DEPENDENCIES.items()):
        target = deps / module
        if not target.is_dir():
            shutil.copytree(DEBIAN_GOCODE / module, target, ignore=shutil.ignore_patterns("*_test.go", "go.sum"))
            (target / "go.mod").write_text(f"module {module}\n", encoding="utf-8")
        lines.append(f"\t{module} {version} => {target}")
    lines += [")", ""]
    work = folder / "go.work"
    work.write_text("\n".join(lines), encoding="utf-8")
    return work


def go_env(work: Path) -> dict[str, str]:
    """Environment for the go command: this workspace, no proxy, no checksum database."""
    return {"GOWORK": str(work), "GOPROXY": "off", "GOFLAGS": "", "GOSUMDB": "off"}
