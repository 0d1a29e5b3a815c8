"""Entry point of the ``context-handling`` console script.

The script is installed with the package, but the service's dependencies come with the
``service`` extra; without them this says so in one line instead of a traceback.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    try:
        from .commands import cli
    except ImportError as exc:
        print(
            f"error: context-handling needs the service extra ({exc.name} is missing): "
            "pip install 'eventbus[service]' (from a clone: pip install -e '.[service]')",
            file=sys.stderr,
        )
        sys.exit(1)
    cli(prog_name="context-handling")
