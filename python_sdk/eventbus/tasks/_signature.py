"""A typed function → the command contract of its task, with no I/O.

Naming and versioning (docs/workflows.md): a task ``fn`` of service ``svc`` has the event type
``tasks.<svc>.<name>.v<version>`` (``svc`` lower-cased with every other character than
``a-z0-9_`` turned into ``_``; ``name`` defaults to the function's name; ``version`` to 1), on the
``tasks`` exchange with the type as routing key, so its exported file is
``contracts/tasks/<svc>.<name>.v<version>.schema.json`` and passes the contract lint. A
compatible change of the signature (a new parameter with a default) keeps the version; a
breaking one (a parameter removed, renamed, retyped or newly required) takes ``version=N+1``,
which ``eventbus contracts breaking`` enforces once the schema is exported.

The payload is an object with one property per parameter (JSON names = parameter names), closed
(``additionalProperties: false``); a parameter with a default is optional. Descriptions come from
the docstring: its first paragraph describes the task, an ``Args:`` section its parameters.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from .._contract import EventContract
from .._exceptions import ConfigurationError

__all__ = ["TASKS_EXCHANGE", "task_contract", "task_type"]

TASKS_EXCHANGE = "tasks"
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_ARG_LINE = re.compile(r"^\s{2,}(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(\([^)]*\))?\s*:\s*(?P<text>.+)$")


def _snake(text: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", text.lower())


def task_type(service: str, name: str, version: int) -> str:
    """``tasks.<service>.<name>.v<version>``, or ``ConfigurationError`` when a part cannot be one."""
    domain = _snake(service)
    if not _NAME.fullmatch(domain):
        raise ConfigurationError(f"service {service!r} does not make a task domain ([a-z][a-z0-9_]*)")
    if not _NAME.fullmatch(name):
        raise ConfigurationError(f"task name {name!r} must be lower_snake_case ([a-z][a-z0-9_]*)")
    if not isinstance(version, int) or version < 1:
        raise ConfigurationError(f"task version must be a positive integer, got {version!r}")
    return f"{TASKS_EXCHANGE}.{domain}.{name}.v{version}"


def _docs(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The docstring's first paragraph and its ``Args:`` entries (Google style)."""
    doc = inspect.getdoc(fn) or ""
    summary = " ".join(doc.split("\n\n", 1)[0].split())
    args: dict[str, str] = {}
    in_args = False
    for line in doc.splitlines():
        if line.strip() in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
            continue
        if in_args:
            if line and not line.startswith(" "):
                break
            match = _ARG_LINE.match(line)
            if match:
                args[match["name"]] = match["text"].strip()
    return summary, args


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part)


def _house_style(schema: Any) -> Any:
    """Pydantic's schema as the contract lint wants it: titles only on what names a type (pydantic
    titles every property), and every object open or closed explicitly (a nested model that
    does not forbid extra fields accepts them: ``additionalProperties: true``)."""
    if isinstance(schema, dict):
        properties = schema.get("properties")
        cleaned = {k: _house_style(v) for k, v in schema.items()}
        if schema.get("type") == "object" and "additionalProperties" not in schema:
            cleaned["additionalProperties"] = True
        if isinstance(properties, dict):
            cleaned["properties"] = {
                k: {kk: _house_style(vv) for kk, vv in v.items() if kk != "title"} for k, v in properties.items()
            }
        return cleaned
    if isinstance(schema, list):
        return [_house_style(item) for item in schema]
    return schema


def task_contract(fn: Callable[..., Any], *, service: str, name: str | None, version: int) -> EventContract[Any]:
    """The contract of ``fn``'s calls; ``ConfigurationError`` for what cannot be one (``*args``,
    positional-only or unannotated parameters)."""
    action = name or fn.__name__
    event_type = task_type(service, action, version)
    hints = get_type_hints(fn, include_extras=True)
    summary, arg_docs = _docs(fn)
    fields: dict[str, Any] = {}
    for parameter in inspect.signature(fn).parameters.values():
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            raise ConfigurationError(f"task {fn.__qualname__}: parameter {parameter.name!r} must be named "
                                     "(no *args, **kwargs or positional-only parameters): a message has fields")
        if parameter.name not in hints:
            raise ConfigurationError(f"task {fn.__qualname__}: parameter {parameter.name!r} needs a type annotation")
        description = arg_docs.get(parameter.name) or f"The {parameter.name} argument of the task."
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (hints[parameter.name], Field(default, description=description))
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        _pascal(action), __config__=ConfigDict(extra="forbid"), __doc__=summary or None, **fields
    )
    model.__module__ = fn.__module__
    schema = _house_style(model.model_json_schema())
    schema["description"] = summary or f"Runs the task {action} of {service}."
    return EventContract(type=event_type, exchange=TASKS_EXCHANGE, model=model, schema=schema,
                         routing_key=event_type, owner=service)
