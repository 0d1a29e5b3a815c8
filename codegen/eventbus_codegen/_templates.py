"""Jinja2 set-up shared by the generators: templates are files, one per kind of output file."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

__all__ = ["Renderer"]


@cache
def _environment(folder: Path) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,  # a misspelt variable is an error, not an empty string
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["json"] = lambda value: json.dumps(value, ensure_ascii=False)
    return environment


class Renderer:
    """Renders the templates of one folder with a shared context."""

    def __init__(self, folder: Path, filters: Mapping[str, Callable[..., Any]] | None = None) -> None:
        self._environment = _environment(folder)
        self._environment.filters.update(filters or {})

    def render(self, template: str, context: Mapping[str, Any], **extra: Any) -> str:
        return self._environment.get_template(template).render({**context, **extra})
