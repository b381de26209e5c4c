"""Optimal cohort matching: assign a whole cohort of participants to coaches with capacities at once.

The caller has already applied the hard constraints and scored the top-k eligible coaches per
participant, so the input is a sparse bipartite graph with integer scores. `match_cohort` returns an
exact optimum; `greedy_assign` (best edges first) is kept only as the benchmark baseline.

Objectives (both lexicographic, both exact):

- ``best_fit``: maximise the total score; among assignments with that total, match as many people as
  possible (so nobody is left out for nothing when a zero-score edge fits).
- ``everyone_matched``: maximise the number matched; among those, maximise the total score.

Both become one weight per edge, ``value = A * score + B``, with an "unmatched" option worth 0:
``A = n + 1, B = 1`` for best_fit (a score unit outweighs any count difference) and ``A = 1,
B = sum of each participant's best score + 1`` for everyone_matched (one more match outweighs any score).

Algorithm: successive shortest paths for a transportation problem (Ahuja, Magnanti, Orlin, ch. 9).
Every participant supplies one unit that must reach the sink either through a coach (arc value
``value``, coach -> sink with capacity = the coach's capacity) or through its own "unmatched" arc
(value 0). Participants are processed one at a time; for each, a Dijkstra over reduced costs finds
the cheapest way to route it, which may move already-assigned participants along an alternating
path to a coach with a free place, or push one of them to "unmatched" when that is worth more.
Duals are kept as one price per coach (0 while it has a free place); a participant's dual is its
profit ``value - price`` at its coach, so every assigned edge is tight by construction. After each
search, prices of coaches settled closer than the sink rise by the gap (the standard early-stop
potential update), which keeps all residual reduced costs non-negative. Each augmentation is along
a shortest path, so the flow stays minimum-cost for the supplies routed so far; when all are routed
the assignment is optimal (reduced-cost optimality). Scores are integers, so there is no rounding.

Why this and not a global primal-dual: a shortest path from one participant usually ends after a
handful of heap pops (its best coach still has room), and the search stops as soon as the sink is
settled, so most of the work is proportional to the local contention rather than to the graph. A
coach with a free place is offered to the sink the moment it is reached (it costs nothing more to
get there) instead of being queued: with many tied scores this stops the search at the first free
place on a plateau of equal distances rather than after exploring the whole plateau. Worst case
O(n * E log E) for n participants and E edges; the benchmark (bench/cohort_match.py) matches 5,000
people onto 1,000 coaches of capacity 5 with 20 edges each in about 2 s.

Determinism: the input is canonicalised first (participants and coaches sorted by id, each
participant's edges by coach id) and every tie is broken by those indices, so the same *set* of
participants, coaches and edges gives the same assignment whatever order they are passed in.

Only the standard library is used: this runs inside the Lambda layer.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

Mode = Literal["best_fit", "everyone_matched"]
MODES: tuple[Mode, ...] = ("best_fit", "everyone_matched")

REASON_NO_EDGES = "no eligible coach"
REASON_AT_CAPACITY = "every eligible coach was at capacity"
REASON_BETTER_FIT = "left unmatched for a better total fit"

_INF = float("inf")


@dataclass(frozen=True)
class CohortResult:
    """An assignment of a cohort. `unmatched` and the dicts follow participant / coach id order."""

    assignments: dict[str, str]
    objective: int
    matched: int
    unmatched: list[tuple[str, str]]
    load: dict[str, int]
    mode: Mode


@dataclass(frozen=True)
class _Problem:
    participant_ids: list[str]
    coach_ids: list[str]
    capacities: list[int]
    # Per participant: (coach index, score) sorted by coach index.
    arcs: list[list[tuple[int, int]]]
    reasons: dict[int, str]


def _is_int(value: object) -> bool:
    # bool is an int subclass; True as a score or capacity is a caller bug.
    return isinstance(value, int) and not isinstance(value, bool)


def _prepare(
    participants: Sequence[str],
    coaches: Mapping[str, int],
    edges: Sequence[tuple[str, str, int]],
    mode: str,
    reasons: Mapping[str, str] | None,
) -> _Problem:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
    participant_ids = sorted(participants)
    for a, b in pairwise(participant_ids):
        if a == b:
            raise ValueError(f"duplicate participant id {a!r}")
    coach_ids = sorted(coaches)
    capacities: list[int] = []
    for cid in coach_ids:
        cap = coaches[cid]
        if not _is_int(cap) or cap < 0:
            raise ValueError(f"coach {cid!r} has invalid capacity {cap!r}; expected an int >= 0")
        capacities.append(cap)
    p_index = {pid: i for i, pid in enumerate(participant_ids)}
    c_index = {cid: j for j, cid in enumerate(coach_ids)}
    arcs: list[list[tuple[int, int]]] = [[] for _ in participant_ids]
    seen: set[tuple[int, int]] = set()
    for edge in edges:
        if len(edge) != 3:
            raise ValueError(f"edge {edge!r} is not (participant_id, coach_id, score)")
        pid, cid, score = edge
        if pid not in p_index:
            raise ValueError(f"edge {edge!r} names unknown participant {pid!r}")
        if cid not in c_index:
            raise ValueError(f"edge {edge!r} names unknown coach {cid!r}")
        if not _is_int(score) or score < 0:
            raise ValueError(f"edge {edge!r} has invalid score {score!r}; expected an int >= 0")
        key = (p_index[pid], c_index[cid])
        if key in seen:
            raise ValueError(f"duplicate edge for participant {pid!r} and coach {cid!r}")
        seen.add(key)
        arcs[key[0]].append((key[1], score))
    for row in arcs:
        row.sort()
    given: dict[int, str] = {}
    for pid, reason in (reasons or {}).items():
        if pid not in p_index:
            raise ValueError(f"reason given for unknown participant {pid!r}")
        given[p_index[pid]] = reason
    return _Problem(participant_ids, coach_ids, capacities, arcs, given)


def _scaling(problem: _Problem, mode: Mode) -> tuple[int, int]:
    """(A, B) so that maximising sum(A * score + B) over matched edges is the mode's objective."""
    if mode == "best_fit":
        return len(problem.participant_ids) + 1, 1
    return 1, sum(max((s for _, s in row), default=0) for row in problem.arcs) + 1


def _solve(problem: _Problem, a: int, b: int) -> list[int]:
    """Coach index per participant (-1 = unmatched), maximising sum(a * score + b)."""
    n = len(problem.participant_ids)
    caps = problem.capacities
    values = [[(j, a * s + b) for j, s in row] for row in problem.arcs]
    price = [0] * len(caps)
    members: list[list[int]] = [[] for _ in caps]
    coach_of = [-1] * n
    value_of = [0] * n  # value of the participant's current edge; its dual is value_of - price
    heappush, heappop = heapq.heappush, heapq.heappop

    # Order only affects speed, not the optimum: participants with the most to gain claim first,
    # which keeps later alternating paths short. Ties fall back to the canonical index.
    order = sorted(
        (i for i in range(n) if values[i]),
        key=lambda i: (-max(v for _, v in values[i]), i),
    )
    for root in order:
        row = values[root]
        # Root's dual: its best profit, or 0 if staying unmatched is at least as good.
        u = 0
        for j, v in row:
            if v - price[j] > u:
                u = v - price[j]
        best = u  # distance to the sink through root's own "unmatched" arc
        sink_coach = -1
        sink_dummy = root
        dist: dict[int, int] = {}
        pred: dict[int, tuple[int, int]] = {}
        heap: list[tuple[int, int]] = []
        for j, v in row:
            d = u - v + price[j]
            if d < best and d < dist.get(j, _INF):
                pred[j] = (root, v)
                if len(members[j]) < caps[j]:
                    # A free place (price 0) reaches the sink at d: no need to settle the coach.
                    best, sink_coach = d, j
                else:
                    dist[j] = d
                    heap.append((d, j))
        heapq.heapify(heap)
        settled: list[tuple[int, int]] = []
        while heap:
            dj, j = heappop(heap)
            if dj >= best:
                break
            if dj > dist[j]:
                continue  # stale entry
            settled.append((j, dj))
            pj = price[j]
            for y in members[j]:
                base = dj + value_of[y] - pj  # dj + y's dual
                if base < best:
                    # y gives up its place and stays unmatched.
                    best, sink_coach, sink_dummy = base, -1, y
                for k, v in values[y]:
                    d = base - v + price[k]
                    if d < best and d < dist.get(k, _INF):
                        pred[k] = (y, v)
                        if len(members[k]) < caps[k]:
                            best, sink_coach = d, k
                        else:
                            dist[k] = d
                            heappush(heap, (d, k))
        # Early-stop potential update: coaches settled closer than the sink get dearer.
        for j, dj in settled:
            if dj < best:
                price[j] += best - dj
        # Augment: walk back from the sink, moving each participant one coach along the path.
        if sink_coach == -1:
            if sink_dummy == root:
                continue
            j = coach_of[sink_dummy]
            members[j].remove(sink_dummy)
            coach_of[sink_dummy] = -1
        else:
            j = sink_coach
        while True:
            x, v = pred[j]
            prev = coach_of[x]
            if prev != -1:
                members[prev].remove(x)
            members[j].append(x)
            coach_of[x] = j
            value_of[x] = v
            if x == root:
                break
            j = prev
    return coach_of


def _can_reach_free_place(problem: _Problem, coach_of: list[int]) -> list[bool]:
    """Per participant: is there an alternating path from it to a coach with a free place?"""
    m = len(problem.coach_ids)
    incoming: list[list[int]] = [[] for _ in range(m)]
    for i, row in enumerate(problem.arcs):
        for j, _ in row:
            incoming[j].append(i)
    load = [0] * m
    for j in coach_of:
        if j != -1:
            load[j] += 1
    coach_seen = [load[j] < problem.capacities[j] for j in range(m)]
    stack = [j for j in range(m) if coach_seen[j]]
    reach = [False] * len(coach_of)
    while stack:
        k = stack.pop()
        for x in incoming[k]:
            if reach[x] or coach_of[x] == k:
                continue
            reach[x] = True
            j = coach_of[x]
            if j != -1 and not coach_seen[j]:
                coach_seen[j] = True
                stack.append(j)
    return reach


def _result(problem: _Problem, coach_of: list[int], mode: Mode, *, explain_better_fit: bool) -> CohortResult:
    score_of = [dict(row) for row in problem.arcs]
    assignments: dict[str, str] = {}
    load = dict.fromkeys(problem.coach_ids, 0)
    objective = 0
    unmatched: list[tuple[str, str]] = []
    reach = _can_reach_free_place(problem, coach_of) if explain_better_fit else None
    for i, pid in enumerate(problem.participant_ids):
        j = coach_of[i]
        if j != -1:
            cid = problem.coach_ids[j]
            assignments[pid] = cid
            load[cid] += 1
            objective += score_of[i][j]
        elif not problem.arcs[i]:
            unmatched.append((pid, problem.reasons.get(i, REASON_NO_EDGES)))
        elif reach is not None and reach[i]:
            # It could be placed by moving others, but only at a lower total score.
            unmatched.append((pid, REASON_BETTER_FIT))
        else:
            unmatched.append((pid, REASON_AT_CAPACITY))
    return CohortResult(assignments, objective, len(assignments), unmatched, load, mode)


def match_cohort(
    participants: Sequence[str],
    coaches: Mapping[str, int],
    edges: Sequence[tuple[str, str, int]],
    mode: Mode = "best_fit",
    reasons: Mapping[str, str] | None = None,
) -> CohortResult:
    """Exact optimal assignment of `participants` to `coaches` (id -> remaining capacity) over `edges`.

    `edges` are (participant_id, coach_id, score) with an int score >= 0, at most one per pair.
    `reasons` explains participants that have no edges; it is not used for anyone else.
    Raises ValueError naming the offending id, edge or value when the input is inconsistent.
    """
    problem = _prepare(participants, coaches, edges, mode, reasons)
    a, b = _scaling(problem, mode)
    coach_of = _solve(problem, a, b)
    return _result(problem, coach_of, mode, explain_better_fit=mode == "best_fit")


def greedy_assign(
    participants: Sequence[str],
    coaches: Mapping[str, int],
    edges: Sequence[tuple[str, str, int]],
    mode: Mode = "best_fit",
    reasons: Mapping[str, str] | None = None,
) -> CohortResult:
    """Baseline: take edges best score first (ties by participant id, then coach id) while both sides can.

    Not optimal in either mode; `mode` is only recorded. Same validation as `match_cohort`.
    """
    problem = _prepare(participants, coaches, edges, mode, reasons)
    order = sorted((-s, i, j) for i, row in enumerate(problem.arcs) for j, s in row)
    left = list(problem.capacities)
    coach_of = [-1] * len(problem.participant_ids)
    for _, i, j in order:
        if coach_of[i] == -1 and left[j] > 0:
            coach_of[i] = j
            left[j] -= 1
    # Greedy saw every edge of an unmatched participant while its coach was full: "at capacity" holds.
    return _result(problem, coach_of, mode, explain_better_fit=False)
