"""The canvas: ``chain``, ``group``, ``chord`` and their steps (``Signature``), as plain values.

Nothing here is checked or sent: ``_compile`` turns a canvas into the plan and the routing slip,
and checks the types of every step against the result of the one before (docs/workflows.md).

    chain(fetch.s(user_id="u1"), group(score.s(), rank.s()), summarize.s())
    chord([shard.si(n=i) for i in range(100)], merge.s())
    step(ResizeImage, {"width": 64}, returns=ImageResized)      # a contract of any language
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from .._contract import EventContract, contract_for
from .._exceptions import ConfigurationError

__all__ = ["Canvas", "Chain", "Chord", "Group", "Signature", "chain", "chord", "group", "step"]


@dataclass(frozen=True, eq=False)
class Signature:
    """One step: an event of ``contract`` with the fields ``args``.

    ``immutable`` steps (``Task.si``, or ``step`` with its whole payload) take no input; the
    others get the previous step's result, as one field (``into``, or the one required field
    still missing) or merged into ``args`` (see docs/workflows.md, Typing). ``returns`` is the
    contract of the step's result (None: the step returns nothing, or it is not known).
    """

    contract: EventContract[Any]
    args: Mapping[str, Any] = field(default_factory=dict)
    immutable: bool = False
    returns: EventContract[Any] | None = None
    into: str | None = None

    @property
    def type(self) -> str:
        return self.contract.type

    def __or__(self, other: Canvas) -> Chain:
        return chain(self, other)

    def __repr__(self) -> str:
        mark = "si" if self.immutable else "s"
        return f"<{self.contract.type}.{mark}({', '.join(sorted(self.args))})>"


@dataclass(frozen=True, eq=False)
class Chain:
    """Steps one after the other; each (but an immutable one) takes the result of the one before."""

    steps: tuple[Canvas, ...]

    def __or__(self, other: Canvas) -> Chain:
        return chain(self, other)


@dataclass(frozen=True, eq=False)
class Group:
    """Members side by side, each with the same input; its result is their results, in order."""

    members: tuple[Canvas, ...]

    def __or__(self, other: Canvas) -> Chain:
        return chain(self, other)


@dataclass(frozen=True, eq=False)
class Chord:
    """A group, then ``callback`` once all members are done, with their results in group order."""

    header: Group
    callback: Canvas

    def __or__(self, other: Canvas) -> Chain:
        return chain(self, other)


Canvas = Union[Signature, Chain, Group, Chord]  # noqa: UP007 (a runtime alias used in isinstance)


def _canvas(value: Any, where: str) -> Canvas:
    if isinstance(value, (Signature, Chain, Group, Chord)):
        return value
    raise ConfigurationError(f"{where}: {value!r} is not a step (use task.s(...), task.si(...) or step(Model, ...)), "
                             "a chain, a group or a chord")


def _members(items: tuple[Any, ...], what: str) -> tuple[Canvas, ...]:
    one = items[0] if len(items) == 1 else None
    if one is not None and not isinstance(one, (Signature, Chain, Group, Chord)) and isinstance(one, Iterable):
        items = tuple(items[0])
    if not items:
        raise ConfigurationError(f"a {what} needs at least one step")
    return tuple(_canvas(item, f"{what} member {i}") for i, item in enumerate(items))


def chain(*steps: Any) -> Chain:
    """``chain(a, b, c)`` (or ``a | b | c``): run them one after the other; nested chains are flattened."""
    flat: list[Canvas] = []
    for item in _members(steps, "chain"):
        flat.extend(item.steps if isinstance(item, Chain) else (item,))
    return Chain(tuple(flat))


def group(*members: Any) -> Group:
    """``group(a, b, c)`` or ``group(iterable)``: run the members side by side."""
    return Group(_members(members, "group"))


def chord(header: Any, callback: Any) -> Chord:
    """``chord(group_or_iterable, callback)``: the callback gets the members' results in group order."""
    return Chord(header if isinstance(header, Group) else group(header), _canvas(callback, "chord callback"))


def _json_args(contract: EventContract[Any], payload: BaseModel | Mapping[str, Any] | None) -> dict[str, Any]:
    if payload is None:
        return {}
    if isinstance(payload, BaseModel):
        return dict(payload.model_dump(mode="json", by_alias=True, exclude_unset=True))
    if isinstance(payload, Mapping):
        return dict(to_jsonable_python(dict(payload)))
    raise ConfigurationError(f"the payload of a {contract.type} step must be a model or a dict, "
                             f"got {type(payload).__name__}")


def _required(contract: EventContract[Any]) -> set[str]:
    required = contract.schema.get("required", [])
    return set(required) if isinstance(required, list) else set()


def step(model: type[BaseModel] | EventContract[Any], payload: BaseModel | Mapping[str, Any] | None = None, *,
         returns: type[BaseModel] | EventContract[Any] | None = None, into: str | None = None) -> Signature:
    """A step of any contract (a generated model of a Go or Node task, say).

    ``payload`` gives fields (a model or a dict); a step given all its required fields takes no
    input, the others take the previous result. ``returns`` is the model (or contract) of its
    result, for the type checks; ``into`` makes the previous result that one field.
    """
    contract = model if isinstance(model, EventContract) else contract_for(model)
    result = returns if returns is None or isinstance(returns, EventContract) else contract_for(returns)
    args = _json_args(contract, payload)
    complete = into is None and _required(contract) <= args.keys()
    return Signature(contract, args, immutable=complete, returns=result, into=into)


def task_signature(contract: EventContract[Any], returns: Any, args: Mapping[str, Any], *,
                   immutable: bool) -> Signature:
    """``Task.s``/``Task.si``: ``returns`` is the function's return annotation."""
    result: EventContract[Any] | None = None
    if isinstance(returns, type) and issubclass(returns, BaseModel):
        found = getattr(returns, "__eventbus_contract__", None)
        result = found if isinstance(found, EventContract) else None
    return Signature(contract, dict(to_jsonable_python(dict(args))), immutable=immutable, returns=result)
