"""The catalog's HTML pages, from Jinja2 templates in ``templates/`` (one per kind of page)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

from ._model import Catalog

__all__ = ["render_html"]

_TEMPLATES = Path(__file__).parent / "templates"


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(catalog: Catalog) -> dict[str, str]:
    """``{relative path: HTML or CSS}``: the index, one page per event and version, the style sheet."""
    env = _environment()
    files = {
        "index.html": env.get_template("index.html.jinja2").render(catalog=catalog, root=""),
        "style.css": (_TEMPLATES / "style.css").read_text(encoding="utf-8"),
    }
    page_template = env.get_template("event.html.jinja2")
    for page in catalog.pages:
        files[page.href] = page_template.render(page=page, catalog=catalog, root="../")
    return files
