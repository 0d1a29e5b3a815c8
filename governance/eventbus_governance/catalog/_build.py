"""``eventbus docs build --out DIR``: the catalog's files, deterministic to the byte, written to DIR.

The tree has to load cleanly (``load_contracts``): a catalog of half-broken contracts would
document something no publisher can send. The schema files are copied next to the pages so that
every "Schema" link, and every relative ``$ref`` inside them, resolves offline.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from eventbus_codegen._contracts import load_contracts

from .._consumers import load_consumers
from ._asyncapi import build_asyncapi
from ._html import render_html
from ._model import build_catalog

__all__ = ["ASYNCAPI_FILE", "build_docs", "render_docs"]

ASYNCAPI_FILE = "asyncapi.yaml"


def render_docs(contracts_root: Path) -> dict[str, bytes]:
    """``{relative path: content}`` of the whole catalog."""
    catalog = build_catalog(load_contracts(contracts_root), load_consumers(contracts_root))
    files = {path: text.encode("utf-8") for path, text in render_html(catalog).items()}
    document = build_asyncapi(catalog)
    files[ASYNCAPI_FILE] = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110).encode("utf-8")
    for relative, source in catalog.schema_files():
        files[relative] = source.read_bytes()
    return dict(sorted(files.items()))


def build_docs(contracts_root: Path, out: Path) -> list[Path]:
    """Write the catalog under ``out``; return the files written (unchanged ones are left alone)."""
    written = []
    for relative, content in render_docs(contracts_root).items():
        path = out / relative
        if path.is_file() and path.read_bytes() == content:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    return written
