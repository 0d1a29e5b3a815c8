"""Lint checks on what a contract is called and where it lives: path, type, routing, ``$id``, consumers.

These are the names every other tool joins on (code generation names classes after them, the SDK
routes by them, ``breaking`` pairs versions by them), so each disagreement is its own finding.
"""

from __future__ import annotations

from collections.abc import Iterator

# The loader's own checks of names and identity, so lint and code generation never disagree.
from eventbus_codegen._contracts import COMPATIBILITY_MODES, _check_identity, _check_location
from eventbus_codegen._validate import EVENTBUS_KEYS

from ._context import Issue, LintContext, LintFile

__all__ = [
    "check_consumers_file",
    "expected_type",
    "check_file_path",
    "check_id",
    "check_json",
    "check_metadata",
    "check_routing",
    "check_title",
]

def expected_type(file: LintFile) -> str | None:
    """``<domain>.<entity>.<action>.v<N>`` as the path spells it, or ``None`` (shared or misnamed file)."""
    name, _ = _check_location(file.path, file.relative)
    return name.type if name is not None else None


def check_json(ctx: LintContext) -> Iterator[Issue]:
    for file in ctx.files:
        if file.schema is None:
            yield file.path, "", f"not a usable schema file: {file.error}"


def check_file_path(ctx: LintContext) -> Iterator[Issue]:
    for file in ctx.schema_files:
        name, errors = _check_location(file.path, file.relative)  # the loader's rule, so both agree
        for error in errors:
            yield file.path, "", error.message
        block = file.schema.get("x-eventbus") if file.schema else None
        declared = block.get("type") if isinstance(block, dict) else None
        if name is not None and isinstance(declared, str) and declared != name.type:
            yield file.path, "/x-eventbus/type", f"x-eventbus.type is {declared!r} but the file path says {name.type!r}"


def check_metadata(ctx: LintContext) -> Iterator[Issue]:
    for file in ctx.schema_files:
        assert file.schema is not None
        block = file.schema.get("x-eventbus")
        if file.is_shared:
            if block is not None:
                yield file.path, "/x-eventbus", "shared definitions carry no x-eventbus (only event contracts do)"
            continue
        if not isinstance(block, dict):
            message = "missing x-eventbus object (type, exchange, routing_key, owner, compatibility)"
            yield file.path, "/x-eventbus", message
            continue
        for key in sorted(EVENTBUS_KEYS):
            value = block.get(key)
            if value is None:
                yield file.path, "/x-eventbus", f"x-eventbus.{key} is missing; state it explicitly"
            elif not isinstance(value, str) or not value:
                yield file.path, f"/x-eventbus/{key}", f"x-eventbus.{key} must be a non-empty string"
        mode = block.get("compatibility")
        if isinstance(mode, str) and mode and mode not in COMPATIBILITY_MODES:
            yield file.path, "/x-eventbus/compatibility", (
                f"compatibility {mode!r} is not one of {', '.join(COMPATIBILITY_MODES)}"
            )
        for key in block:
            if key not in EVENTBUS_KEYS:
                yield file.path, f"/x-eventbus/{key}", f"unknown x-eventbus key {key!r}"


def check_routing(ctx: LintContext) -> Iterator[Issue]:
    for file in ctx.event_files:
        spelled = expected_type(file)
        block = file.schema.get("x-eventbus") if file.schema else None
        if spelled is None or not isinstance(block, dict):
            continue
        exchange, routing_key = block.get("exchange"), block.get("routing_key")
        domain = file.relative.parts[0]
        if isinstance(exchange, str) and exchange != domain:
            yield file.path, "/x-eventbus/exchange", (
                f"exchange is {exchange!r}; events of the {domain!r} domain go to the {domain!r} exchange"
            )
        if isinstance(routing_key, str) and routing_key != spelled:
            message = f"routing_key is {routing_key!r}; it must be the type {spelled!r}"
            yield file.path, "/x-eventbus/routing_key", message


def check_id(ctx: LintContext) -> Iterator[Issue]:
    first_by_id: dict[str, str] = {}
    for file in ctx.schema_files:
        assert file.schema is not None
        errors = [error for error in _check_identity(file.path, file.relative, file.schema) if error.pointer == "/$id"]
        for error in errors:
            yield file.path, "/$id", error.message
        schema_id = file.schema_id
        if errors or schema_id is None:
            continue
        if ctx.tree_base_uri and file.base_uri != ctx.tree_base_uri:
            yield file.path, "/$id", f"$id {schema_id!r} is not under {ctx.tree_base_uri!r} like the other contracts"
        first = first_by_id.setdefault(schema_id, file.relative.as_posix())
        if first != file.relative.as_posix():
            yield file.path, "/$id", f"$id {schema_id!r} is also used by {first}"


def check_title(ctx: LintContext) -> Iterator[Issue]:
    for file in ctx.schema_files:
        assert file.schema is not None
        for error in _check_identity(file.path, file.relative, file.schema):
            if error.pointer == "/title":
                yield file.path, "/title", error.message


def check_consumers_file(ctx: LintContext) -> Iterator[Issue]:
    if ctx.consumers_error is not None:
        yield ctx.consumers_error.path, ctx.consumers_error.pointer, ctx.consumers_error.message
        return
    if ctx.consumers is None or ctx.consumers.path is None:
        return
    known = ctx.event_types()
    for consumer, event_type, pointer in ctx.consumers.read_pointers():
        if event_type not in known:
            yield ctx.consumers.path, pointer, (
                f"{consumer.service} reads {event_type!r}, but no contract in the tree has that type"
            )
