"""The reply of request-reply on the wire, with no I/O (docs/wire-format.md, Request-reply).

A request is an ordinary event with two more AMQP properties: ``reply_to`` (RabbitMQ's direct
reply-to pseudo-queue) and ``correlation_id``. Whoever settles it answers once, on the default
exchange with routing key = the request's ``reply_to`` and the same ``correlation_id``:

    ok      header ``eventbus-reply-status: ok``; the handler's result as a CloudEvent of its
            contract (binary headers, JSON body), or an empty body when it returned None
    error   header ``eventbus-reply-status: error``, ``eventbus-error-type`` (the exception's
            class name) and ``eventbus-error`` (its message); empty body. Sent when the handler
            failed its last attempt or the request was parked at once (bad data, unknown type);
            the same two headers, with the same values, as the parked copy's

A retry sends nothing: the retry copy keeps ``reply_to`` and its last attempt answers.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ._async_publisher import properties_of
from ._contract import EventContract, contract_for
from ._envelope import JSON_CONTENT_TYPE, read_envelope
from ._exceptions import ContractError, EnvelopeError, EventValidationError, RemoteTaskError
from ._limits import DEFAULT_LIMITS, InputLimits
from ._outgoing import build_outgoing
from ._parking import ERROR_HEADER, ERROR_TYPE_HEADER, ParkReason
from ._retry import failure_reason
from .transports import Incoming, Outgoing, Properties

__all__ = ["ERROR_HEADER", "ERROR_TYPE_HEADER", "REPLY_STATUS_HEADER", "error_reply", "ok_reply", "read_reply"]

REPLY_STATUS_HEADER = "eventbus-reply-status"
_MAX_ERROR_TEXT = 2000  # a header, not a log: long enough for a message, short enough for any frame


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def ok_reply(request: Properties, result: Any, *, source: str) -> Outgoing:
    """The reply carrying ``result`` (a model of a contract, or None) to ``request``'s sender.

    A result that is neither is answered as an error (``ContractError``): the caller learns at
    once that the responder cannot give it a typed result, instead of timing out.
    """
    assert request.reply_to, "only a request (reply_to set) is answered"
    if result is None:
        properties = Properties(correlation_id=request.correlation_id, headers={REPLY_STATUS_HEADER: "ok"})
        return "", request.reply_to, properties, b""
    try:
        if not isinstance(result, BaseModel):
            raise ContractError(f"the handler returned a {type(result).__name__}, not a model of a contract")
        message = build_outgoing(result, source=source, headers={REPLY_STATUS_HEADER: "ok"})
    except (ContractError, EventValidationError) as exc:
        return error_reply(request, exc)
    properties = properties_of(message)
    properties.correlation_id = request.correlation_id
    return "", request.reply_to, properties, message.body


def error_reply(request: Properties, failure: BaseException | ParkReason) -> Outgoing:
    """The reply telling ``request``'s sender that its handler failed for good, and why."""
    assert request.reply_to, "only a request (reply_to set) is answered"
    if isinstance(failure, ParkReason):
        error_type, error = failure.error_type or failure.code, failure.error
    else:  # the exception's own message, and its type named as in the parked copy's headers
        error_type, error = failure_reason(failure).error_type, str(failure)
    headers = {REPLY_STATUS_HEADER: "error", ERROR_TYPE_HEADER: error_type, ERROR_HEADER: error[:_MAX_ERROR_TEXT]}
    return "", request.reply_to, Properties(correlation_id=request.correlation_id, headers=headers), b""


def read_reply(
    reply: Incoming,
    expected: type[BaseModel] | None,
    *,
    request_type: str,
    request_id: str,
    limits: InputLimits = DEFAULT_LIMITS,
) -> Any:
    """The typed result in ``reply`` (a model of ``expected``, or None when no result was expected).

    Raises ``RemoteTaskError`` for an error reply, ``ContractError`` when the reply is not of
    ``expected``'s contract, ``EventValidationError`` when its data breaks that contract.
    """
    headers = reply.properties.headers or {}
    status = _text(headers.get(REPLY_STATUS_HEADER, ""))
    if status == "error":
        raise RemoteTaskError(_text(headers.get(ERROR_TYPE_HEADER, "Exception")), _text(headers.get(ERROR_HEADER, "")),
                              event_type=request_type, event_id=request_id)
    if status != "ok":
        raise EnvelopeError("malformed_reply", f"reply to {request_type} {request_id} has no valid "
                            f"{REPLY_STATUS_HEADER} header (got {status!r})")
    if expected is None:
        return None
    contract: EventContract[Any] = contract_for(expected)
    if not reply.body:
        raise ContractError(f"the handler of {request_type} returned no result; expected {contract.type}",
                            event_type=contract.type)
    attributes, _, data, _ = read_envelope(headers, reply.properties.content_type or JSON_CONTENT_TYPE, reply.body)
    if attributes["type"] != contract.type:
        raise ContractError(f"the reply to {request_type} is a {attributes['type']}, expected {contract.type}",
                            event_type=contract.type)
    return contract.decode(data, limits)
