"""Event contracts at run time: what a type is called, where it goes, and how its data is checked.

A contract is the pair (JSON Schema, pydantic model) produced by the code generator from one file
in ``contracts/``. The JSON Schema is the authority, since Node and Go services validate with the
same document; the pydantic model gives Python code its types. Decoding checks both, straight
from the message bytes, so no intermediate objects are built for data that is going to be parked.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, TypeVar

import jsonschema_rs
import orjson
from pydantic import BaseModel, ValidationError

from ._exceptions import ContractError, EventValidationError, SchemaViolation
from ._limits import DEFAULT_LIMITS, InputLimits, load_json

__all__ = ["ContractRegistry", "EventContract", "contract_for", "known_contract"]

ModelT = TypeVar("ModelT", bound=BaseModel)

_CONTRACT_ATTRIBUTE = "__eventbus_contract__"
_KNOWN: dict[str, EventContract[Any]] = {}  # every contract made in this process, by type (the newest wins)


def known_contract(event_type: str) -> EventContract[Any] | None:
    """The contract of ``event_type`` if one was made in this process (generated, a task's, a report's).

    A workflow step's slip names the contracts of the steps after it; a runtime can validate, and
    so forward, only those it knows."""
    return _KNOWN.get(event_type)


@dataclass(frozen=True, eq=False)
class EventContract(Generic[ModelT]):
    """Everything the bus needs to know about one event type and major version.

    ``schema`` is the contract document itself; ``resources`` maps the ``$id`` of every shared
    schema it reaches by ``$ref`` to that schema, so validation needs no file or network access.
    """

    type: str
    exchange: str
    model: builtins.type[ModelT]  # ``builtins``: the field ``type`` above shadows the builtin here
    schema: Mapping[str, Any]
    resources: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    routing_key: str = ""
    owner: str = ""
    compatibility: str = "BACKWARD"

    def __post_init__(self) -> None:
        if not self.routing_key:
            object.__setattr__(self, "routing_key", self.type)
        # Let ``contract_for(Model)`` find the contract from the class alone.
        setattr(self.model, _CONTRACT_ATTRIBUTE, self)
        _KNOWN[self.type] = self

    @property
    def schema_id(self) -> str:
        """The contract's ``$id``; written to ``cloudEvents_dataschema``."""
        return str(self.schema.get("$id", ""))

    @cached_property
    def _validator(self) -> Any:
        resources: list[tuple[str, Any]] = list(self.resources.items())
        registry = jsonschema_rs.Registry(resources) if self.resources else None
        return jsonschema_rs.validator_for(dict(self.schema), registry=registry, validate_formats=True)

    def violations(self, instance: Any) -> list[SchemaViolation]:
        """Every reason ``instance`` breaks the JSON Schema (empty when it is valid)."""
        validator = self._validator
        if validator.is_valid(instance):
            return []
        return [
            SchemaViolation(
                instance_path="/" + "/".join(str(p) for p in error.instance_path),
                schema_path="#/" + "/".join(str(p) for p in error.schema_path),
                message=error.message,
            )
            for error in validator.iter_errors(instance)
        ]

    def decode(self, body: bytes, limits: InputLimits = DEFAULT_LIMITS) -> ModelT:
        """Bytes off the wire to a typed model; raises ``EnvelopeError`` or ``EventValidationError``.

        JSON is read under ``limits`` (see ``_limits.py``: big integers, duplicate keys).
        """
        return self.validate_python(load_json(body, limits))

    def validate_python(self, instance: Any) -> ModelT:
        """A parsed JSON value to a typed model, checked against schema and model."""
        problems = self.violations(instance)
        if problems:
            raise EventValidationError(self.type, problems)
        try:
            return self.model.model_validate(instance)
        except ValidationError as exc:
            raise EventValidationError(self.type, _pydantic_violations(exc)) from None

    def encode(self, event: ModelT) -> bytes:
        """A model to the exact body bytes that go on the wire, checked against the schema first.

        The model is dumped in JSON mode with unset optional fields left out, so the body is
        what a producer in another language would write, and it is validated against the JSON
        Schema so a Python producer can never emit what a Go or Node consumer would reject.
        """
        if not isinstance(event, self.model):
            raise ContractError(
                f"{type(event).__name__} is not the model of {self.type} ({self.model.__name__})",
                event_type=self.type,
            )
        instance = event.model_dump(mode="json", by_alias=True, exclude_unset=True)
        problems = self.violations(instance)
        if problems:
            raise EventValidationError(self.type, problems)
        return orjson.dumps(instance)


def _pydantic_violations(exc: ValidationError) -> list[SchemaViolation]:
    return [
        SchemaViolation(
            instance_path="/" + "/".join(str(p) for p in error["loc"]),
            schema_path="(pydantic model)",
            message=error["msg"],
        )
        for error in exc.errors(include_url=False)
    ]


def contract_for(model: type[BaseModel] | BaseModel) -> EventContract[Any]:
    """The contract of a generated model class (or instance); ``ContractError`` when it has none."""
    cls = model if isinstance(model, type) else type(model)
    contract = getattr(cls, _CONTRACT_ATTRIBUTE, None)
    if not isinstance(contract, EventContract):
        raise ContractError(
            f"{cls.__qualname__} is not an event model: generate it from a contract with "
            "'eventbus codegen python' and import it from the generated package"
        )
    return contract


class ContractRegistry:
    """Event type → contract, for code that starts from a type string (CLI, taps, routers)."""

    def __init__(self, contracts: Iterable[EventContract[Any]] = ()) -> None:
        self._by_type: dict[str, EventContract[Any]] = {}
        for contract in contracts:
            self.add(contract)

    def add(self, contract: EventContract[Any]) -> None:
        existing = self._by_type.get(contract.type)
        if existing is not None and existing is not contract:
            raise ContractError(f"event type {contract.type} is registered twice", event_type=contract.type)
        self._by_type[contract.type] = contract

    def get(self, event_type: str) -> EventContract[Any]:
        try:
            return self._by_type[event_type]
        except KeyError:
            known = ", ".join(sorted(self._by_type)) or "none"
            raise ContractError(f"unknown event type {event_type!r} (known: {known})", event_type=event_type) from None

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._by_type

    def __iter__(self) -> Iterator[EventContract[Any]]:
        return iter(sorted(self._by_type.values(), key=lambda c: c.type))

    def __len__(self) -> int:
        return len(self._by_type)

    @property
    def exchanges(self) -> list[str]:
        return sorted({c.exchange for c in self._by_type.values()})
