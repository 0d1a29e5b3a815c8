"""Friend candidates (DESIGN section 6), with no I/O.

Candidates for user u are the people two hops away through friend or close_friend pairs
(u — f — c), who are not u and not already u's friends, ranked by

    rank(c) = Σ over friends f of u who are friends of c:  min(score(u, f), score(f, c))

best first (ties by user id, so the order is deterministic), top 20. A path is only as strong as
its weaker link, and several paths add up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["MAX_CANDIDATES", "FriendGraph", "RankedCandidate", "friend_graph", "rank_candidates"]

MAX_CANDIDATES = 20

# user → {friend: score of the pair}, for friend-or-better pairs only
FriendGraph = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True, slots=True)
class RankedCandidate:
    user_id: str
    rank_score: float
    mutual_friends: int


def friend_graph(edges: Iterable[tuple[str, str, float]]) -> dict[str, dict[str, float]]:
    """Adjacency in both directions from (user_a, user_b, score) rows of friend-or-better pairs."""
    graph: dict[str, dict[str, float]] = {}
    for a, b, score in edges:
        graph.setdefault(a, {})[b] = score
        graph.setdefault(b, {})[a] = score
    return graph


def rank_candidates(user: str, graph: FriendGraph, limit: int = MAX_CANDIDATES) -> list[RankedCandidate]:
    """The top ``limit`` candidates for ``user``.

    ``graph`` must hold the friends of ``user`` and the friends of each of them (the user's
    two-hop neighbourhood); anything beyond is ignored.
    """
    mine = graph.get(user, {})
    totals: dict[str, float] = {}
    paths: dict[str, int] = {}
    for friend in sorted(mine):
        via = mine[friend]
        for candidate, onward in graph.get(friend, {}).items():
            if candidate == user or candidate in mine:
                continue
            totals[candidate] = totals.get(candidate, 0.0) + min(via, onward)
            paths[candidate] = paths.get(candidate, 0) + 1
    best = sorted(totals, key=lambda c: (-totals[c], c))[:limit]
    return [RankedCandidate(c, totals[c], paths[c]) for c in best]
