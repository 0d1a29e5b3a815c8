"""``@bus.task``: a typed function that runs locally when called and on a worker when sent.

    @bus.task(retry=RetryPolicy(max_attempts=3), timeout=30)
    async def send_welcome(user_id: str, locale: str = "en") -> None: ...

    await send_welcome.delay("u_1")                       # validate, publish, return the event id
    await send_welcome.apply_async(kwargs={"user_id": "u_1"}, countdown=60)
    await send_welcome("u_1")                             # a plain call, here and now

The task is an ordinary subscription of the bus on the command contract made from its
signature (``_signature``), so its queue, retries, time limit and DLQ are those of any handler.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, get_type_hints

from pydantic import BaseModel, ValidationError

from .._contract import EventContract, _pydantic_violations
from .._exceptions import ConfigurationError, EventValidationError

if TYPE_CHECKING:
    from ..workflows._canvas import Signature

__all__ = ["SyncTask", "Task"]

P = ParamSpec("P")
R = TypeVar("R")
Publish = Callable[..., Awaitable[str]]


class _TaskBase(Generic[P, R]):
    """What both kinds of task share: the function, its contract, a local call, the message of a call.

    ``model`` is the pydantic model of one call (its fields are the parameters) and ``contract``
    its command contract; ``type`` is the event type (see docs/workflows.md, Naming).
    """

    def __init__(self, fn: Callable[P, R], contract: EventContract[Any],
                 examples: Sequence[Mapping[str, Any]] = ()) -> None:
        self.fn = fn
        self.contract = contract
        self.examples = tuple(examples)  # for the exported contract (``eventbus contracts export``)
        self._signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    @property
    def model(self) -> type[BaseModel]:
        return self.contract.model

    @property
    def type(self) -> str:
        return self.contract.type

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function here and now, as if it were not a task (like Celery)."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.contract.type} ({self.fn.__module__}.{self.fn.__qualname__})>"

    def s(self, **partial: Any) -> Signature:
        """A workflow step of this task that takes the previous step's result for what ``partial`` lacks."""
        from ..workflows._canvas import task_signature

        return task_signature(self.contract, self._returns(), partial, immutable=False)

    def si(self, *args: Any, **kwargs: Any) -> Signature:
        """A workflow step with its whole call given (validated now); it ignores the previous result."""
        from ..workflows._canvas import task_signature

        data = self.message(*args, **kwargs).model_dump(mode="json", by_alias=True, exclude_unset=True)
        return task_signature(self.contract, self._returns(), data, immutable=True)

    def _returns(self) -> Any:
        try:
            return get_type_hints(self.fn).get("return")
        except Exception:  # an annotation that does not resolve: the result type is unknown
            return None

    def message(self, *args: Any, **kwargs: Any) -> BaseModel:
        """The validated message of the call ``fn(*args, **kwargs)`` (``EventValidationError`` if not).

        Only the arguments given are set, so defaults are the worker's, as for a local call."""
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ConfigurationError(f"{self.contract.type}: {exc}") from None
        try:
            return self.model.model_validate(dict(bound.arguments))
        except ValidationError as exc:
            raise EventValidationError(self.contract.type, _pydantic_violations(exc)) from None


class Task(_TaskBase[P, R]):
    """A function registered as a task: call it, ``await fn.delay(...)`` or ``await fn.apply_async(...)``."""

    def __init__(self, fn: Callable[P, R], contract: EventContract[Any], publish: Publish,
                 examples: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(fn, contract, examples)
        self._publish = publish

    def handler(self) -> Callable[[Any], Any]:
        """``handler(message)`` for the subscription: the function called with the message's fields."""
        fn: Callable[..., Any] = self.fn
        names = tuple(self._signature.parameters)

        def arguments(message: BaseModel) -> dict[str, Any]:
            return {name: getattr(message, name) for name in names}

        if inspect.iscoroutinefunction(fn):

            async def run_async(message: BaseModel) -> Any:
                return await fn(**arguments(message))

            return run_async

        def run(message: BaseModel) -> Any:
            return fn(**arguments(message))

        return run

    async def delay(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Validate the call and publish it (confirmed); returns the event id."""
        return await self._publish(self.message(*args, **kwargs))

    async def apply_async(
        self,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        countdown: float | timedelta | None = None,
        eta: datetime | None = None,
        event_id: str | None = None,
    ) -> str:
        """``delay`` with options: run after ``countdown`` seconds or at ``eta`` (an aware datetime),
        through the bus's delay queues (0 s … 7 days, 100 ms ticks); ``event_id`` for idempotent sends."""
        message = self.message(*args, **(kwargs or {}))
        return await self._publish(message, delay=countdown, at=eta, event_id=event_id)


class SyncTask(_TaskBase[P, R]):
    """The task of a ``SyncEventBus``: the same, with ``delay`` and ``apply_async`` blocking."""

    def __init__(self, task: Task[P, R], publish: Callable[..., str]) -> None:
        super().__init__(task.fn, task.contract, task.examples)
        self.task = task
        self._publish = publish  # SyncEventBus.publish

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> str:
        """Validate the call, publish it and wait for the confirm; returns the event id."""
        return self._publish(self.message(*args, **kwargs))

    def apply_async(
        self,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        countdown: float | timedelta | None = None,
        eta: datetime | None = None,
        event_id: str | None = None,
    ) -> str:
        """``Task.apply_async``, blocking until the broker confirms."""
        message = self.message(*args, **(kwargs or {}))
        return self._publish(message, delay=countdown, at=eta, event_id=event_id)
