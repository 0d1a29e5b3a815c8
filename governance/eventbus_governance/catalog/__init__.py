"""``eventbus docs build``: a static HTML event catalog and an AsyncAPI 3.0 document from the contracts."""

from ._asyncapi import build_asyncapi
from ._build import ASYNCAPI_FILE, build_docs, render_docs
from ._model import Catalog, EventPage, FieldRow, build_catalog

__all__ = ["ASYNCAPI_FILE", "Catalog", "EventPage", "FieldRow", "build_asyncapi", "build_catalog", "build_docs",
           "render_docs"]
