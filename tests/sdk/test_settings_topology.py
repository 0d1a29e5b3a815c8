"""Settings and topology names, with no broker."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from eventbus import BusSettings, ConfigurationError, TopologyMismatchError, redact_url
from eventbus._topology import (
    QueueSpec,
    consumer_queue_name,
    dead_letter_queue_name,
    describe_mismatch,
    queue_specs,
    without_safety_net,
)


def test_default_url_is_the_local_broker_and_env_overrides_it() -> None:
    assert BusSettings.from_env("svc", env={}).url == "amqp://guest:guest@127.0.0.1:5672/%2F"
    settings = BusSettings.from_env("svc", env={"EVENTBUS_URL": "amqp://a:b@h1/, amqp://a:b@h2/",
                                               "EVENTBUS_PREFETCH": "7"})
    assert settings.urls == ("amqp://a:b@h1/", "amqp://a:b@h2/")
    assert settings.prefetch == 7
    assert settings.source == "/services/svc"


@pytest.mark.parametrize(
    "kwargs",
    [{"service": "Bad Name"}, {"service": "s", "urls": ()}, {"service": "s", "urls": ("http://x",)},
     {"service": "s", "prefetch": 0}, {"service": "s", "queue_type": "stream"}, {"service": "s", "confirm_timeout": 0}],
)
def test_bad_settings_are_refused_up_front(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        BusSettings(**kwargs)  # type: ignore[arg-type]


def test_bad_prefetch_env_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="EVENTBUS_PREFETCH"):
        BusSettings.from_env("svc", env={"EVENTBUS_PREFETCH": "lots"})


def test_credentials_never_appear_in_redacted_urls() -> None:
    assert redact_url("amqp://guest:secret@127.0.0.1:5672/%2F") == "amqp://guest:***@127.0.0.1:5672/%2F"
    assert redact_url("amqp://127.0.0.1/") == "amqp://127.0.0.1/"
    with pytest.raises(ConfigurationError) as caught:
        BusSettings(service="s", urls=("http://user:hunter2@host/",))
    assert "hunter2" not in str(caught.value)


def test_queue_names_follow_the_design() -> None:
    queue = consumer_queue_name("context-handling", "chat.conversation.ended.v1")
    assert queue == "context-handling.chat.conversation.ended.v1"
    assert dead_letter_queue_name(queue) == "context-handling.chat.conversation.ended.v1.dlq"
    main, dlq = queue_specs(queue, "quorum", delivery_limit=20)
    assert main.arguments == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 20,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": queue + ".dlq",
    }
    assert dlq.name == queue + ".dlq" and dlq.arguments == {"x-queue-type": "quorum"}
    assert without_safety_net(main) == QueueSpec(queue, {"x-queue-type": "quorum"})
    assert without_safety_net(dlq) is None
    classic, _ = queue_specs(queue, "classic", delivery_limit=20)  # classic queues have no delivery limit
    assert classic.arguments == {"x-queue-type": "classic"}


def test_precondition_failed_becomes_an_exact_difference() -> None:
    text = ("PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'svc.t.v1' in vhost '/': "
            "received the value 'quorum' of type 'longstr' but current is none")
    error = describe_mismatch(text)
    assert isinstance(error, TopologyMismatchError)
    assert error.entity == "queue 'svc.t.v1'"
    assert "received the value 'quorum'" in error.detail and "current is none" in error.detail
    assert describe_mismatch("NOT_FOUND - no exchange 'x'") is None


def test_every_connection_tries_the_urls_shuffled_and_the_refused_ones_last() -> None:
    from eventbus._settings import note_unreachable

    urls = tuple(f"amqp://guest:guest@node{n}:5672/%2F" for n in range(3))
    settings = BusSettings(service="svc", urls=urls)
    orders = {tuple(settings.connect_order(now=0.0)) for _ in range(200)}
    assert all(sorted(order) == sorted(urls) for order in orders)
    assert {order[0] for order in orders} == set(urls)  # connections spread over every node
    note_unreachable(urls[1], now=100.0)
    assert {settings.connect_order(now=110.0)[-1] for _ in range(50)} == {urls[1]}  # refused 10 s ago: last
    assert {settings.connect_order(now=140.0)[0] for _ in range(200)} == set(urls)  # 40 s ago: forgiven
    assert BusSettings(service="svc").connect_order() == [BusSettings(service="svc").url]


@pytest.mark.broker
async def test_a_dead_url_in_the_list_is_skipped_by_every_connection_role(broker_url: str) -> None:
    """Publisher, consumer and the helper (leader, scheduler) connections all reach the live broker."""
    from eventbus.transports._broker import connect
    from eventbus.transports._connect import connect_first

    dead = "amqp://guest:guest@127.0.0.1:1/%2F"
    settings = BusSettings(service="svc", urls=(dead, broker_url, dead.replace(":1/", ":2/")), connect_timeout=3)
    for _ in range(5):  # whatever the shuffle
        connection = await connect(settings, "publish")
        await connection.close()
        helper = await connect_first(settings, "leader")
        assert helper.peer is not None
        assert helper.peer[1] == (urlsplit(broker_url).port or 5672)  # the live one of the three URLs
        await helper.close()
