"""The errors the code generator raises on purpose.

    CodegenError                  base; names the file and the JSON pointer at fault
    ├── ContractLoadError         a contract file codegen cannot use (unreadable, bad metadata, broken $ref)
    └── GenerationError           a readable contract the generator could not turn into code

Every error points at ``file#/json/pointer`` so that a CLI can print it as one line an author can act on
without reading a traceback, and editors can jump to the spot.
"""

from __future__ import annotations

import warnings
from pathlib import Path

__all__ = ["CodegenError", "CodegenWarning", "ContractLoadError", "GenerationError", "location", "warn"]


class CodegenError(Exception):
    """Base of the code generator's errors; ``str()`` is ``file#/pointer: message`` (``file: message``).

    ``pointer`` is a JSON pointer into the file (``""`` for the whole file), kept apart from
    ``message`` so tools can render locations their own way (text, JSON, GitHub annotations).
    """

    def __init__(self, path: Path, pointer: str, message: str) -> None:
        self.path = path
        self.pointer = pointer
        self.message = message
        super().__init__(f"{location(path, pointer)}: {message}")


def location(path: Path, pointer: str) -> str:
    """``file#/pointer``, or just ``file`` when the whole file is meant."""
    return f"{path.as_posix()}#{pointer}" if pointer else path.as_posix()


class ContractLoadError(CodegenError):
    """A file in contracts/ that cannot be loaded as a contract or shared schema."""


class GenerationError(CodegenError):
    """A loaded contract that the generator or its output directory cannot handle."""


class CodegenWarning(UserWarning):
    """A construct generated as the closest wider type; the message names ``file#/pointer``.

    The JSON Schema stays the authority (every binding validates with it), so the output is still
    correct, only less precise than the schema: a warning, never a failed build.
    """


def warn(path: Path, pointer: str, message: str) -> None:
    """Issue a ``CodegenWarning`` ``file#/pointer: message``, shown as that one line (no generator source line)."""
    warnings.warn_explicit(f"{location(path, pointer)}: {message}", CodegenWarning, "eventbus-codegen", 0,
                           module="eventbus_codegen")
