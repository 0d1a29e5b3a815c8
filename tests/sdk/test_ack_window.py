"""The ack window never covers a delivery that is still being handled or was settled another way."""

from eventbus.transports._acks import AckWindow


def test_processed_prefix_is_one_multiple_ack() -> None:
    window = AckWindow()
    for tag in (1, 2, 3):
        window.received(tag)
    for tag in (1, 2, 3):
        window.processed(tag)
    assert window.take() == [(3, True)]
    assert window.take() == []


def test_a_slow_delivery_is_never_covered_and_does_not_hold_back_the_others() -> None:
    window = AckWindow()
    for tag in (1, 2, 3, 4):
        window.received(tag)
    for tag in (1, 3, 4):
        window.processed(tag)
    assert window.take() == [(1, True), (3, False), (4, False)]
    window.processed(2)
    assert window.take() == [(2, True)]


def test_a_nacked_delivery_leaves_the_window() -> None:
    window = AckWindow()
    for tag in (1, 2, 3):
        window.received(tag)
    window.processed(1)
    window.forget(2)
    window.processed(3)
    assert window.pending == 2
    assert window.take() == [(3, True)]  # 2 was nacked before this frame, so the broker no longer counts it


def test_nothing_unprocessed_is_ever_acked() -> None:
    window = AckWindow()
    window.received(1)
    window.received(2)
    window.processed(3)  # never received on this channel: ignored
    assert window.pending == 0
    assert window.take() == []
