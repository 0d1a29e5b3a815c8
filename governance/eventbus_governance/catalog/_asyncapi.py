"""The AsyncAPI 3.0 document of the catalog: channels, operations, messages with CloudEvents headers.

One channel per event type: the routing key on the domain's topic exchange (AMQP channel binding
0.3.0). One ``send`` operation for the owner, one ``receive`` operation per registered consumer
(with the queue it reads, ``<service>.<type>``). Each message carries the CloudEvents binary-mode
headers of docs/wire-format.md and its payload schema. Payloads are the contracts themselves,
bundled: every ``$ref`` into another file or into ``$defs`` becomes a
``#/components/schemas/<Name>`` reference, so the document stands alone.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any
from urllib.parse import urldefrag

from eventbus_codegen._contracts import ContractSet
from eventbus_codegen._refs import iter_refs

from .._schema_index import SchemaIndex, SchemaNode
from ._model import Catalog, EventPage

__all__ = ["build_asyncapi"]

AMQP_BINDING_VERSION = "0.3.0"
_STRIPPED = ("$schema", "$id", "$defs", "definitions", "x-eventbus")
_HEADERS = "CloudEventsHeaders"


def build_asyncapi(catalog: Catalog) -> dict[str, Any]:
    bundler = _Bundler(catalog.contracts)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for page in catalog.pages:
        meta = page.document.event_metadata
        name = page.message_name
        bundler.add_payload(page)
        messages[name] = _message(page)
        channels[meta.type] = {
            "address": meta.routing_key,
            "title": f"{meta.type} on the {meta.exchange} exchange",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {"amqp": {
                "is": "routingKey",
                "exchange": {"name": meta.exchange, "type": "topic", "durable": True, "autoDelete": False,
                             "vhost": "/"},
                "bindingVersion": AMQP_BINDING_VERSION,
            }},
        }

        def channel_ref(event_type: str = meta.type) -> dict[str, str]:
            return {"$ref": f"#/channels/{event_type}"}

        def message_ref(event_type: str = meta.type, message: str = name) -> list[dict[str, str]]:
            return [{"$ref": f"#/channels/{event_type}/messages/{message}"}]  # fresh objects: no YAML anchors

        operations[f"send.{meta.type}"] = {
            "action": "send",
            "channel": channel_ref(),
            "messages": message_ref(),
            "summary": f"{meta.owner} publishes {meta.type} (publisher confirms, mandatory).",
            "bindings": {"amqp": {"deliveryMode": 2, "mandatory": True, "bindingVersion": AMQP_BINDING_VERSION}},
            "x-eventbus-service": meta.owner,
        }
        for consumer in page.subscribers:
            operations[f"receive.{consumer.service}.{meta.type}"] = {
                "action": "receive",
                "channel": channel_ref(),
                "messages": message_ref(),
                "summary": f"{consumer.service} ({consumer.language}) consumes {meta.type} from its queue "
                           f"{consumer.service}.{meta.type}.",
                "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}},
                "x-eventbus-service": consumer.service,
                "x-eventbus-language": consumer.language,
                "x-eventbus-queue": f"{consumer.service}.{meta.type}",
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "eventbus events",
            "version": f"1.0.0+{_fingerprint(catalog.contracts)}",
            "description": "Every event on the bus, generated from contracts/ by 'eventbus docs build'. Messages are "
                           "CloudEvents 1.0 in binary content mode over AMQP 0-9-1 (see docs/wire-format.md).",
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "127.0.0.1:5672", "protocol": "amqp", "protocolVersion": "0.9.1",
                              "description": "A RabbitMQ on this machine, as the README sets it up."}},
        "channels": channels,
        "operations": operations,
        "components": {"schemas": {_HEADERS: _cloudevents_headers(), **bundler.schemas}, "messages": messages},
    }


def _message(page: EventPage) -> dict[str, Any]:
    meta = page.document.event_metadata
    description = page.description
    return {
        "name": meta.type,
        "title": f"{page.document.title} v{page.major}",
        "summary": description.split(". ")[0].rstrip(".") + ".",
        "description": description,
        "contentType": "application/json",
        "headers": {"allOf": [
            {"$ref": f"#/components/schemas/{_HEADERS}"},
            {"type": "object", "properties": {
                "cloudEvents_type": {"const": meta.type},
                "cloudEvents_dataschema": {"const": page.document.schema_id},
            }},
        ]},
        "payload": {"$ref": f"#/components/schemas/{page.message_name}"},
        "bindings": {"amqp": {"messageType": meta.type, "bindingVersion": AMQP_BINDING_VERSION}},
        "examples": [
            {"name": f"example-{index + 1}", "payload": payload}
            for index, payload in enumerate(page.document.schema.get("examples", []))
        ],
    }


def _cloudevents_headers() -> dict[str, Any]:
    """The binary-mode attributes a publisher writes (docs/wire-format.md); all values are strings."""
    def text(description: str, **extra: Any) -> dict[str, Any]:
        return {"type": "string", "description": description, **extra}

    return {
        "type": "object",
        "description": "CloudEvents 1.0 attributes as AMQP application headers (cloudEvents_ prefix); readers also "
                       "accept cloudEvents: and ce- prefixes.",
        "required": ["cloudEvents_specversion", "cloudEvents_id", "cloudEvents_source", "cloudEvents_type",
                     "cloudEvents_time"],
        "properties": {
            "cloudEvents_specversion": text("CloudEvents version.", const="1.0"),
            "cloudEvents_id": text("Event id: a UUID unless the publisher gives a deterministic id."),
            "cloudEvents_source": text("Publishing service, /services/<service> by default."),
            "cloudEvents_type": text("The event type, e.g. chat.conversation.ended.v1."),
            "cloudEvents_time": text("When the event was published, RFC 3339 UTC.", format="date-time"),
            "cloudEvents_subject": text("Optional subject, e.g. the conversation id."),
            "cloudEvents_dataschema": text("The contract's $id.", format="uri"),
            "traceparent": text("W3C trace context, unprefixed."),
            "tracestate": text("W3C trace state, unprefixed."),
        },
    }


class _Bundler:
    """Copies contract schemas into ``components/schemas``, turning every ``$ref`` into a local one."""

    def __init__(self, contracts: ContractSet) -> None:
        self.index = SchemaIndex(contracts)
        self.schemas: dict[str, Any] = {}
        self._names: dict[str, str] = {}  # absolute target URI → component name

    def add_payload(self, page: EventPage) -> None:
        doc = page.document
        self._names[doc.schema_id] = page.message_name
        self.schemas[page.message_name] = self._bundle(SchemaNode(doc, "", doc.schema))

    def _bundle(self, node: SchemaNode) -> Any:
        value = copy.deepcopy(node.value)
        if isinstance(value, dict):
            for key in _STRIPPED:
                value.pop(key, None)
        for pointer, target in list(iter_refs(value, node.doc.schema_id)):
            holder = _parent(value, pointer)
            holder["$ref"] = f"#/components/schemas/{self._component(target, node)}"
        return value

    def _component(self, target: str, origin: SchemaNode) -> str:
        if target in self._names:
            return self._names[target]
        resolved = self.index.resolve(SchemaNode(origin.doc, "", {"$ref": target}))
        if resolved is None:
            raise ValueError(f"unresolvable $ref {target!r} in {origin.doc.relative_path}")
        fragment = urldefrag(target).fragment
        base = fragment.rpartition("/")[2] or resolved.doc.title
        name = base if base not in self.schemas else f"{resolved.doc.title}{base}"
        self._names[target] = name
        self.schemas[name] = None  # reserve the name before recursing (recursive schemas)
        self.schemas[name] = self._bundle(resolved)
        return name


def _parent(value: Any, pointer: str) -> dict[str, Any]:
    """The object holding the ``$ref`` at ``pointer`` (which ends with ``/$ref``)."""
    node = value
    for token in pointer.split("/")[1:-1]:
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def _fingerprint(contracts: ContractSet) -> str:
    digest = hashlib.sha256()
    for doc in contracts.documents:
        digest.update(str(doc.relative_path).encode())
        digest.update(doc.path.read_bytes())
    return digest.hexdigest()[:12]
