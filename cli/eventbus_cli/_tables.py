"""Rich output that stays whole when piped: a terminal's width on a tty, no width limit otherwise.

Rich lays tables out for 80 columns when stdout is not a terminal, so ``eventbus dlq show | less``
or ``> file`` cut event ids and errors short; a pipe or a file has no width to respect, so there
the table is laid out as wide as its content (``--json`` stays the format for scripts).
"""

from __future__ import annotations

import sys

from rich.console import Console

__all__ = ["console"]

_UNBOUNDED = 100_000


def console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=_UNBOUNDED, no_color=True, soft_wrap=False)
