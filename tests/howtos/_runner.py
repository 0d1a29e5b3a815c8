"""A how-to in docs/, run as its reader would: its shell blocks in order, its files written where it says.

Fenced blocks are read by their info string:

- ``sh``: commands, run in one bash script (``set -euo pipefail``), so ``cd`` and ``&`` carry over;
- ``LANG file=PATH``: a file the reader writes (``PATH`` relative to where the commands are);
- ``sh user`` and anything else: shown, not run (commands that need the internet, output).

The script runs in an empty folder outside this repository, with the ``eventbus`` of the test's
environment first on PATH and a private vhost in EVENTBUS_URL.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
_BLOCK = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
_END = "HOWTO_FILE_END"


def script_of(doc: str) -> str:
    """The bash script a how-to amounts to."""
    parts = ["set -euo pipefail"]
    for block in _BLOCK.finditer((DOCS / doc).read_text(encoding="utf-8")):
        info, body = block["info"].split(), block["body"]
        if not info:
            continue
        written = next((word.removeprefix("file=") for word in info[1:] if word.startswith("file=")), None)
        if written is not None:
            assert _END not in body
            parts.append(f'mkdir -p "$(dirname {written})"\ncat > {written} <<\'{_END}\'\n{body}{_END}')
        elif info == ["sh"]:
            parts.append(body)
    return "\n".join(parts) + "\n"


def run_howto(doc: str, folder: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``doc`` in ``folder``; the result carries everything it printed."""
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EVENTBUS_CONFIG")}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment['PATH']}"
    environment.update(GIT_AUTHOR_NAME="docs", GIT_AUTHOR_EMAIL="docs@example.test", GIT_COMMITTER_NAME="docs",
                       GIT_COMMITTER_EMAIL="docs@example.test")
    environment.update(env)
    script = folder / "howto.sh"
    script.write_text(script_of(doc), encoding="utf-8")
    return subprocess.run(["bash", str(script)], cwd=folder, capture_output=True, text=True, timeout=timeout,
                          env=environment)
