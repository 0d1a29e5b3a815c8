"""Generated type names never collide with what the generated TypeScript package re-exports.

The package's index does ``export * from "@eventbus/runtime"`` beside ``export * from "./types.js"``;
a schema declaring a type the runtime also exports would make the name ambiguous and the package
fail to compile. The type model keeps such names out (``RESERVED_NAMES``): this test keeps that
list in step with the runtime's exports.
"""

from __future__ import annotations

import re
from pathlib import Path

from eventbus_codegen._typemodel import RESERVED_NAMES

RUNTIME_INDEX = Path(__file__).resolve().parents[2] / "runtimes" / "typescript" / "src" / "index.ts"


def _runtime_exports() -> set[str]:
    names = set()
    for block in re.findall(r"export\s+(?:type\s+)?\{([^}]*)\}", RUNTIME_INDEX.read_text(encoding="utf-8")):
        for part in block.split(","):
            part = part.strip().removeprefix("type ").strip()
            if part:
                names.add(part.split(" as ")[-1].strip())
    return names


def test_every_type_like_name_the_runtime_exports_is_reserved() -> None:
    exports = _runtime_exports()
    assert len(exports) > 50, exports  # the parse found the index's export lists
    type_like = {name for name in exports if name[0].isupper() and not name.isupper()}
    assert not type_like - RESERVED_NAMES, sorted(type_like - RESERVED_NAMES)
