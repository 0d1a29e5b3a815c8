"""Candidate ranking on hand-computed graphs."""

from __future__ import annotations

from context_handling.candidates import RankedCandidate, friend_graph, rank_candidates


def test_two_hop_candidates_ranked_by_the_sum_of_weakest_links() -> None:
    graph = friend_graph(
        [
            ("u", "f1", 50.0),
            ("u", "f2", 80.0),
            ("f1", "f2", 60.0),  # f1 and f2 know each other: neither is a candidate for u
            ("c1", "f1", 60.0),
            ("f1", "c2", 30.0),
            ("c1", "f2", 45.0),
            ("f2", "c3", 90.0),
        ]
    )
    # c1: min(50, 60) + min(80, 45) = 95 over 2 paths; c3: min(80, 90) = 80; c2: min(50, 30) = 30
    assert rank_candidates("u", graph) == [
        RankedCandidate("c1", 95.0, 2),
        RankedCandidate("c3", 80.0, 1),
        RankedCandidate("c2", 30.0, 1),
    ]


def test_no_friends_means_no_candidates_and_ties_break_by_id() -> None:
    assert rank_candidates("lonely", friend_graph([("a", "b", 50.0)])) == []
    graph = friend_graph([("u", "f", 50.0), ("f", "z", 40.0), ("f", "y", 40.0)])
    assert [c.user_id for c in rank_candidates("u", graph)] == ["y", "z"]


def test_top_20_only() -> None:
    edges = [("u", "f", 99.0)] + [("f", f"c{n:02d}", float(n)) for n in range(1, 31)]
    ranked = rank_candidates("u", friend_graph(edges))
    assert len(ranked) == 20
    assert ranked[0] == RankedCandidate("c30", 30.0, 1)
    assert ranked[-1].user_id == "c11"
