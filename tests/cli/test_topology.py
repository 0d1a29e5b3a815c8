"""``eventbus topology plan|apply|delete`` in a private vhost: declared, compared, removed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pika
import pytest

from .._vhosts import amqp_url, private_vhost
from ._run import eventbus

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "context-handling.chat.conversation.ended.v1"

pytestmark = pytest.mark.broker


@pytest.fixture
def url() -> str:
    with private_vhost("topology") as vhost:
        yield amqp_url(vhost)


@pytest.fixture
def contracts(tmp_path: Path) -> Path:
    """A copy of this repository's contracts (consumers.json: context-handling reads conversation.ended)."""
    shutil.copytree(ROOT / "contracts", tmp_path / "contracts")
    return tmp_path / "contracts"


def _depth(url: str, queue: str) -> int | None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    except pika.exceptions.ChannelClosedByBroker:
        return None
    finally:
        if connection.is_open:
            connection.close()


def test_plan_shows_what_apply_declares_then_that_it_exists(url: str, contracts: Path) -> None:
    env = {"EVENTBUS_URL": url}
    before = eventbus("topology", "plan", "--service", "context-handling", "--contracts", str(contracts),
                      cwd=contracts.parent, env=env)
    assert before.returncode == 0, before.stdout + before.stderr
    assert "+ exchange chat (topic): chat.conversation.ended.v1" in before.stdout
    assert f"+ queue    {QUEUE} (quorum)" in before.stdout
    applied = eventbus("topology", "apply", "--service", "context-handling", "--contracts", str(contracts),
                       cwd=contracts.parent, env=env)
    assert applied.returncode == 0, applied.stderr
    assert f"queue {QUEUE}.dlq (quorum, durable)" in applied.stdout
    after = eventbus("topology", "plan", "--service", "context-handling", "--contracts", str(contracts),
                     cwd=contracts.parent, env=env)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "= exchange chat" in after.stdout and f"= queue    {QUEUE} " in after.stdout
    assert "every exchange and queue is explained" in after.stdout


def test_plan_lists_what_no_contract_or_registered_consumer_explains(url: str, contracts: Path) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.exchange_declare("legacy", exchange_type="topic", durable=True)
    channel.queue_declare("old-service.chat.conversation.ended.v1", durable=True)
    channel.queue_declare("reports.billing.invoice.paid.v1", durable=True)
    channel.basic_publish("", "reports.billing.invoice.paid.v1", b"{}")
    connection.close()

    result = eventbus("topology", "plan", "--contracts", str(contracts), cwd=contracts.parent,
                      env={"EVENTBUS_URL": url})
    assert result.returncode == 1
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("?")]
    # the management API counts messages with a few seconds' delay: the counts are left out here
    assert [line.rsplit(", ", 1)[0] for line in lines] == [
        "? exchange legacy: no contract publishes to it",
        "? queue    old-service.chat.conversation.ended.v1: old-service is not registered in consumers.json as a "
        "consumer of chat.conversation.ended.v1",
        "? queue    reports.billing.invoice.paid.v1: no contract for billing.invoice.paid.v1",
    ]
    assert "topology delete --service NAME" in result.stderr


def test_plan_says_how_to_enable_the_management_api_when_it_is_off(contracts: Path) -> None:
    result = eventbus("topology", "plan", "--contracts", str(contracts), cwd=contracts.parent,
                      env={"EVENTBUS_MANAGEMENT_URL": "http://127.0.0.1:1"})
    assert result.returncode == 1
    assert "exchange chat (topic)" in result.stdout  # what apply declares, still shown
    assert "rabbitmq-plugins enable rabbitmq_management" in result.stderr and "Traceback" not in result.stderr


def test_delete_refuses_while_messages_wait_then_force_removes_queues_dlqs_and_bindings(
    url: str, contracts: Path
) -> None:
    env = {"EVENTBUS_URL": url}
    common = ("--contracts", str(contracts))
    assert eventbus("topology", "apply", "--service", "context-handling", *common, cwd=contracts.parent,
                    env=env).returncode == 0
    example = json.loads((contracts / "chat" / "conversation.ended.v1.schema.json").read_text())["examples"][0]
    for _ in range(2):
        published = eventbus("publish", "chat.conversation.ended.v1", "--data", json.dumps(example), *common,
                             cwd=contracts.parent, env=env)
        assert published.returncode == 0, published.stderr  # routable: apply bound the service's queue

    refused = eventbus("topology", "delete", "--service", "context-handling", *common, cwd=contracts.parent, env=env)
    assert refused.returncode == 1
    assert f"2 message(s) wait in {QUEUE} (2)" in refused.stderr and "--force" in refused.stderr
    assert _depth(url, QUEUE) == 2

    deleted = eventbus("topology", "delete", "--service", "context-handling", "--force", *common,
                       cwd=contracts.parent, env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert f"deleted queue {QUEUE} (2 message(s))" in deleted.stdout
    assert _depth(url, QUEUE) is None and _depth(url, QUEUE + ".dlq") is None
    again = eventbus("topology", "delete", "--service", "context-handling", *common, cwd=contracts.parent, env=env)
    assert again.returncode == 0 and "nothing to delete" in again.stdout
    unroutable = eventbus("publish", "chat.conversation.ended.v1", "--data", json.dumps(example), *common,
                          cwd=contracts.parent, env=env)
    assert unroutable.returncode == 1  # nothing bound any more: the bindings went with the queue
    assert "no queue is bound to exchange 'chat'" in unroutable.stderr
    assert "start the consumer first" in unroutable.stderr and "eventbus topology apply" in unroutable.stderr


def test_apply_declares_the_queue_type_the_service_uses(url: str, contracts: Path) -> None:
    from eventbus import SyncEventBus
    from eventbus_contracts import ConversationEndedV1

    applied = eventbus("topology", "apply", "--service", "context-handling", "--queue-type", "classic",
                       "--contracts", str(contracts), cwd=contracts.parent, env={"EVENTBUS_URL": url})
    assert applied.returncode == 0, applied.stderr
    assert f"queue {QUEUE} (classic, durable)" in applied.stdout
    # a service on classic queues starts on it without a PRECONDITION_FAILED
    bus = SyncEventBus.from_env("context-handling", urls=(url,), queue_type="classic")
    bus.subscribe(ConversationEndedV1)(lambda event: None)
    bus.start()
    bus.close()
