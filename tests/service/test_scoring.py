"""The formulas of DESIGN section 6 on hand-computed cases (the numbers in comments are the working)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from context_handling.scoring import (
    InvalidConversation,
    PairState,
    Status,
    conversation_contributions,
    points,
    status_of,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def test_points_for_a_balanced_half_hour() -> None:
    # 2·log2(1 + 10 + 10) + 30/12 = 2·4.392317422778761 + 2.5 = 11.284634845557521; r = 1 → ×1
    assert points(10, 10, timedelta(minutes=30)) == pytest.approx(11.284634845557521, rel=1e-12)


def test_points_for_an_unbalanced_hour() -> None:
    # 2·log2(41) + 60/12 = 10.715104009236169 + 5 = 15.715104009236169; r = 10/30 → ×(0.5 + 1/6)
    assert points(30, 10, timedelta(hours=1)) == pytest.approx(15.715104009236169 * (2 / 3), rel=1e-12)


def test_points_are_capped_at_20_and_duration_at_120_minutes() -> None:
    # 2·log2(201) + min(120, 300)/12 = 15.30 + 10 = 25.30 → 20; r = 1
    assert points(100, 100, timedelta(minutes=300)) == 20.0
    # duration alone: 2·log2(1) + 120/12 = 10, with r = 0 (nobody wrote) → ×0.5
    assert points(0, 0, timedelta(minutes=300)) == pytest.approx(5.0)


def test_zero_message_conversation_earns_half_of_its_duration_points() -> None:
    # 2·log2(1) + 12/12 = 1; both 0 → r = 0 → ×0.5
    assert points(0, 0, timedelta(minutes=12)) == pytest.approx(0.5)
    # one silent side: 2·log2(5) = 4.643856189774724; r = 0 → ×0.5
    assert points(4, 0, timedelta(0)) == pytest.approx(2.321928094887362, rel=1e-12)


@pytest.mark.parametrize(
    ("score", "status"),
    [
        (0, Status.stranger),
        (9.999, Status.stranger),
        (10, Status.acquaintance),
        (39.99, Status.acquaintance),
        (40, Status.friend),
        (74.99, Status.friend),
        (75, Status.close_friend),
        (100, Status.close_friend),
    ],
)
def test_status_thresholds(score: float, status: Status) -> None:
    assert status_of(score) is status


def test_new_pair_starts_at_zero_and_takes_the_points() -> None:
    state = PairState().add(12.5, T0)
    assert (state.strength, state.t_ref, state.status) == (12.5, T0, Status.acquaintance)
    assert PairState().score == 0.0 and PairState().status is Status.stranger


def test_decay_after_30_and_90_days() -> None:
    base = PairState().add(10.0, T0)
    # 30 days is one half-life: 10·0.5 + 10 = 15
    assert base.add(10.0, T0 + 30 * DAY).strength == pytest.approx(15.0)
    # 90 days is three: 10·0.125 + 10 = 11.25
    assert base.add(10.0, T0 + 90 * DAY).strength == pytest.approx(11.25)
    # the score as of a later moment decays the same way, S and T_ref untouched
    strong = PairState().add(80.0, T0)
    assert strong.score_at(T0 + 30 * DAY) == pytest.approx(40.0)
    assert strong.score_at(T0 + 90 * DAY) == pytest.approx(10.0)
    assert strong.score_at(T0 - DAY) == 80.0  # never more than the score at T_ref


def test_out_of_order_events_give_the_in_order_state() -> None:
    in_order = PairState().add(10.0, T0).add(6.0, T0 + 10 * DAY).add(10.0, T0 + 30 * DAY)
    reversed_ = PairState().add(10.0, T0 + 30 * DAY).add(6.0, T0 + 10 * DAY).add(10.0, T0)
    shuffled = PairState().add(6.0, T0 + 10 * DAY).add(10.0, T0 + 30 * DAY).add(10.0, T0)
    # Σ p·0.5^((T − t)/30d) at T = T0 + 30d: 10·0.5 + 6·0.5^(20/30) + 10
    expected = 10 * 0.5 + 6 * 0.5 ** (20 / 30) + 10
    for state in (in_order, reversed_, shuffled):
        assert state.t_ref == T0 + 30 * DAY
        assert state.strength == pytest.approx(expected, rel=1e-12)
        assert state.status is Status.acquaintance


def test_score_is_capped_at_100_while_strength_keeps_counting() -> None:
    state = PairState()
    for n in range(8):
        state = state.add(20.0, T0 + n * timedelta(minutes=1))
    assert state.strength == pytest.approx(160.0, rel=1e-4)
    assert state.score == 100.0 and state.status is Status.close_friend
    # a month later S = 80: still above 75
    assert state.score_at(T0 + 30 * DAY) == pytest.approx(80.0, rel=1e-4)


def test_decayed_status_only_reports_a_lower_tier() -> None:
    friend = PairState().add(50.0, T0)  # friend
    assert friend.decayed_status(T0 + DAY) is None  # 50·0.5^(1/30) = 48.9: still friend
    # 50·0.5^(10/30) = 39.7: acquaintance
    assert friend.decayed_status(T0 + 10 * DAY) is Status.acquaintance
    lowered = PairState(friend.strength, friend.t_ref, Status.acquaintance)
    assert lowered.decayed_status(T0 + 10 * DAY) is None  # already there


def test_five_person_conversation_gives_ten_pairs() -> None:
    people = ["u_e", "u_a", "u_d", "u_b", "u_c"]
    counts = {"u_a": 4, "u_b": 4, "u_c": 0, "u_d": 1}
    contributions = conversation_contributions("conv_5", people, T0, T0 + timedelta(minutes=24), counts)
    pairs = [c.pair for c in contributions]
    assert len(pairs) == 10 == len(set(pairs))
    assert all(a < b for a, b in pairs)
    by_pair = {c.pair: c.points for c in contributions}
    # u_a–u_b: 2·log2(9) + 24/12 = 6.339850002884625 + 2, r = 1
    assert by_pair[("u_a", "u_b")] == pytest.approx(2 * math.log2(9) + 2, rel=1e-12)
    # u_c–u_e: nobody wrote: (0 + 2)·0.5 = 1
    assert by_pair[("u_c", "u_e")] == pytest.approx(1.0)
    # u_a–u_d: 2·log2(6) + 2 = 7.169925001442312, r = 1/4 → ×0.625
    assert by_pair[("u_a", "u_d")] == pytest.approx((2 * math.log2(6) + 2) * 0.625, rel=1e-12)
    assert {c.at for c in contributions} == {T0 + timedelta(minutes=24)}


@pytest.mark.parametrize(
    ("participants", "started", "ended", "counts", "reason"),
    [
        (["u_1", "u_2"], T0, T0 - timedelta(minutes=1), {}, "before started_at"),
        (["u_1", "u_2"], T0, T0, {"u_3": 1}, "non-participants"),
        (["u_1", "u_1"], T0, T0, {}, "listed twice"),
    ],
)
def test_inconsistent_conversations_are_rejected_with_the_reason(
    participants: list[str], started: datetime, ended: datetime, counts: dict[str, int], reason: str
) -> None:
    with pytest.raises(InvalidConversation, match=reason) as caught:
        conversation_contributions("conv_bad", participants, started, ended, counts)
    assert caught.value.conversation_id == "conv_bad"
