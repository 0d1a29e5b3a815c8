"""Build the Go runtime benchmark offline and run it in a private vhost (deleted afterwards).

    .venv/bin/python bench/go_runtime/run.py [--count 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.toolchain.builds import go_env, go_workspace, run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    here = Path(__file__).resolve().parent
    vhost = f"bench-go-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as folder:
        build = Path(folder)
        binary = build / "bench"
        run(["go", "build", "-o", str(binary), "."], here, env=go_env(go_workspace(build, [here])))
        subprocess.run(["rabbitmqctl", "add_vhost", vhost], check=True, capture_output=True)
        try:
            subprocess.run(["rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True,
                           capture_output=True)
            url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
            subprocess.run([str(binary), "-url", url, "-count", str(args.count), "-rounds", str(args.rounds)],
                           check=True)
        finally:
            subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True)


if __name__ == "__main__":
    main()
