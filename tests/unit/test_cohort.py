"""The cohort matcher is exactly optimal, valid, deterministic and validates its input.

Optimality is checked against scipy's Hungarian solver (`linear_sum_assignment`) on the matrix expanded
by capacity slots, with one private "unmatched" column per participant.
"""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
from coaching.domain.cohort import (
    REASON_AT_CAPACITY,
    REASON_BETTER_FIT,
    REASON_NO_EDGES,
    CohortResult,
    greedy_assign,
    match_cohort,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

Edges = list[tuple[str, str, int]]
FORBIDDEN = -1e12  # far below any achievable total, so the exact solver never picks a missing edge


def exact_optimum(participants: list[str], coaches: dict[str, int], edges: Edges, weight_of_score) -> tuple[int, int]:
    """(best total weight, matched count of that optimum) over all valid assignments."""
    slots = [cid for cid in sorted(coaches) for _ in range(coaches[cid])]
    slot_columns: dict[str, list[int]] = {}
    for column, cid in enumerate(slots):
        slot_columns.setdefault(cid, []).append(column)
    row = {pid: i for i, pid in enumerate(participants)}
    n = len(participants)
    weights = np.full((n, len(slots) + n), FORBIDDEN)
    for i in range(n):
        weights[i, len(slots) + i] = 0  # this participant's own "unmatched" column
    for pid, cid, score in edges:
        for column in slot_columns.get(cid, []):
            weights[row[pid], column] = weight_of_score(score)
    rows, columns = linear_sum_assignment(weights, maximize=True)
    chosen = weights[rows, columns]
    assert (chosen > FORBIDDEN).all()
    return round(chosen.sum()), int((columns < len(slots)).sum())


def random_instance(seed: int) -> tuple[list[str], dict[str, int], Edges]:
    """Small (even seeds) or medium (odd seeds); sparse or dense; tie-heavy or wide scores; some edgeless people."""
    rng = random.Random(seed)
    n = rng.randint(5, 12) if seed % 2 == 0 else rng.randint(20, 40)
    m = rng.randint(2, 6) if seed % 2 == 0 else rng.randint(6, 15)
    participants = [f"p{i:02d}" for i in range(n)]
    coaches = {f"c{j:02d}": rng.randint(0, 4) for j in range(m)}
    density = rng.choice([0.15, 0.3, 0.6, 1.0])
    top_score = rng.choice([2, 5, 10_000])
    edges = [
        (pid, cid, rng.randint(0, top_score))
        for pid in participants
        if rng.random() > 0.1  # about one in ten has no eligible coach
        for cid in coaches
        if rng.random() < density
    ]
    rng.shuffle(edges)
    return participants, coaches, edges


def assert_valid(result: CohortResult, participants: list[str], coaches: dict[str, int], edges: Edges) -> None:
    scores = {(pid, cid): score for pid, cid, score in edges}
    assert all((pid, cid) in scores for pid, cid in result.assignments.items()), "only given edges are used"
    counts = Counter(result.assignments.values())
    assert result.load == {cid: counts.get(cid, 0) for cid in coaches}, "every coach listed with its load"
    assert all(result.load[cid] <= cap for cid, cap in coaches.items()), "capacities are respected"
    assert result.objective == sum(scores[item] for item in result.assignments.items())
    assert result.matched == len(result.assignments)
    unmatched = [pid for pid, _ in result.unmatched]
    assert sorted([*result.assignments, *unmatched]) == sorted(participants), "everyone is accounted for once"


SEEDS = range(40)


@pytest.mark.parametrize("seed", SEEDS)
def test_best_fit_is_the_exact_optimum(seed: int) -> None:
    participants, coaches, edges = random_instance(seed)
    result = match_cohort(participants, coaches, edges, "best_fit")
    assert_valid(result, participants, coaches, edges)
    best_total, _ = exact_optimum(participants, coaches, edges, lambda s: s)
    assert result.objective == best_total
    # Among best totals it matches as many as possible: (n + 1) * score + 1 ranks total first, then count.
    scale = len(participants) + 1
    _, most_matched = exact_optimum(participants, coaches, edges, lambda s: scale * s + 1)
    assert result.matched == most_matched


@pytest.mark.parametrize("seed", SEEDS)
def test_everyone_matched_is_maximum_cardinality_then_best_total(seed: int) -> None:
    participants, coaches, edges = random_instance(seed)
    result = match_cohort(participants, coaches, edges, "everyone_matched")
    assert_valid(result, participants, coaches, edges)
    big_m = sum(score for _, _, score in edges) + 1  # one more match outweighs any total score
    optimum, most_matched = exact_optimum(participants, coaches, edges, lambda s: s + big_m)
    assert result.matched == most_matched
    assert result.objective == optimum - big_m * most_matched


def test_the_instances_cover_capacity_below_and_above_the_cohort() -> None:
    below = above = 0
    for seed in SEEDS:
        participants, coaches, _ = random_instance(seed)
        below += sum(coaches.values()) < len(participants)
        above += sum(coaches.values()) >= len(participants)
    assert below >= 5
    assert above >= 5


@given(
    n=st.integers(0, 9),
    caps=st.lists(st.integers(0, 3), min_size=1, max_size=5),
    cells=st.lists(st.one_of(st.none(), st.integers(0, 4)), min_size=45, max_size=45),
)
@settings(max_examples=150, deadline=None, derandomize=True)
def test_property_both_modes_match_the_exact_solver(n: int, caps: list[int], cells: list[int | None]) -> None:
    participants = [f"p{i}" for i in range(n)]
    coaches = {f"c{j}": cap for j, cap in enumerate(caps)}
    edges = [
        (pid, cid, cells[i * len(caps) + j])
        for i, pid in enumerate(participants)
        for j, cid in enumerate(coaches)
        if cells[i * len(caps) + j] is not None
    ]
    best_fit = match_cohort(participants, coaches, edges, "best_fit")
    assert_valid(best_fit, participants, coaches, edges)
    assert best_fit.objective == exact_optimum(participants, coaches, edges, lambda s: s)[0]
    big_m = sum(score for _, _, score in edges) + 1
    everyone = match_cohort(participants, coaches, edges, "everyone_matched")
    assert_valid(everyone, participants, coaches, edges)
    optimum, most_matched = exact_optimum(participants, coaches, edges, lambda s: s + big_m)
    assert (everyone.matched, everyone.objective) == (most_matched, optimum - big_m * most_matched)


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("mode", ["best_fit", "everyone_matched"])
def test_any_input_order_gives_the_same_assignment(seed: int, mode: str) -> None:
    participants, coaches, edges = random_instance(seed)
    reference = match_cohort(participants, coaches, edges, mode)
    rng = random.Random(seed)
    for _ in range(3):
        shuffled_participants = rng.sample(participants, len(participants))
        shuffled_coaches = dict(rng.sample(sorted(coaches.items()), len(coaches)))
        shuffled_edges = rng.sample(edges, len(edges))
        again = match_cohort(shuffled_participants, shuffled_coaches, shuffled_edges, mode)
        assert again == reference
        assert list(again.load) == list(reference.load)
        assert greedy_assign(shuffled_participants, shuffled_coaches, shuffled_edges, mode) == greedy_assign(
            participants, coaches, edges, mode
        )


def test_greedy_is_valid_and_never_beats_the_optimum() -> None:
    for seed in SEEDS:
        participants, coaches, edges = random_instance(seed)
        greedy = greedy_assign(participants, coaches, edges)
        assert_valid(greedy, participants, coaches, edges)
        assert greedy.objective <= match_cohort(participants, coaches, edges).objective


def test_the_optimum_beats_greedy_where_greedy_blocks_a_better_pair() -> None:
    # Greedy gives a the shared coach x (10), leaving b nothing; the optimum is a->y, b->x.
    participants, coaches = ["a", "b"], {"x": 1, "y": 1}
    edges = [("a", "x", 10), ("a", "y", 9), ("b", "x", 8)]
    assert greedy_assign(participants, coaches, edges).assignments == {"a": "x"}
    result = match_cohort(participants, coaches, edges)
    assert result.assignments == {"a": "y", "b": "x"}
    assert result.objective == 17


def test_best_fit_leaves_someone_out_only_for_a_better_total() -> None:
    # b fits only x; moving a to y would let b in but lose 10 - (5 + 1) = 4 points.
    participants, coaches = ["a", "b"], {"x": 1, "y": 1}
    edges = [("a", "x", 10), ("a", "y", 1), ("b", "x", 5)]
    best_fit = match_cohort(participants, coaches, edges, "best_fit")
    assert best_fit.assignments == {"a": "x"}
    assert best_fit.unmatched == [("b", REASON_BETTER_FIT)]
    everyone = match_cohort(participants, coaches, edges, "everyone_matched")
    assert everyone.assignments == {"a": "y", "b": "x"}
    assert (everyone.matched, everyone.objective, everyone.unmatched) == (2, 6, [])
    assert everyone.mode == "everyone_matched"


def test_zero_score_edges_still_match_when_a_place_is_free() -> None:
    result = match_cohort(["a"], {"x": 1}, [("a", "x", 0)], "best_fit")
    assert result.assignments == {"a": "x"}
    assert (result.objective, result.matched) == (0, 1)


def test_unmatched_reasons() -> None:
    participants = ["a", "b", "c", "d"]
    coaches = {"x": 1, "closed": 0}
    edges = [("a", "x", 9), ("b", "x", 3), ("d", "closed", 7)]
    reasons = {"c": "no approved coach speaks Japanese", "a": "ignored: a has edges"}
    for mode in ("best_fit", "everyone_matched"):
        result = match_cohort(participants, coaches, edges, mode, reasons)
        assert result.assignments == {"a": "x"}
        assert result.unmatched == [
            ("b", REASON_AT_CAPACITY),
            ("c", "no approved coach speaks Japanese"),
            ("d", REASON_AT_CAPACITY),
        ]
        assert result.load == {"closed": 0, "x": 1}
    assert match_cohort(["e"], {}, []).unmatched == [("e", REASON_NO_EDGES)]


def test_empty_inputs() -> None:
    result = match_cohort([], {"x": 2}, [], "everyone_matched")
    assert result == CohortResult({}, 0, 0, [], {"x": 0}, "everyone_matched")


@pytest.mark.parametrize(
    ("coaches", "edges", "message"),
    [
        ({"x": 1}, [("zz", "x", 1)], "unknown participant 'zz'"),
        ({"x": 1}, [("a", "zz", 1)], "unknown coach 'zz'"),
        ({"x": 1}, [("a", "x", -1)], "invalid score -1"),
        ({"x": 1}, [("a", "x", 1.5)], "invalid score 1.5"),
        ({"x": 1}, [("a", "x", True)], "invalid score True"),
        ({"x": 1}, [("a", "x", 1), ("a", "x", 2)], "duplicate edge for participant 'a' and coach 'x'"),
        ({"x": 1}, [("a", "x")], "is not (participant_id, coach_id, score)"),
        ({"x": -1}, [], "coach 'x' has invalid capacity -1"),
    ],
)
def test_invalid_input_is_rejected_with_the_problem_named(coaches: dict, edges: list, message: str) -> None:
    for solver in (match_cohort, greedy_assign):
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            solver(["a", "b"], coaches, edges)


def test_invalid_participants_mode_and_reasons_are_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate participant id 'a'"):
        match_cohort(["a", "a"], {"x": 1}, [])
    with pytest.raises(ValueError, match="unknown mode 'fastest'"):
        match_cohort(["a"], {"x": 1}, [], "fastest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reason given for unknown participant 'zz'"):
        match_cohort(["a"], {"x": 1}, [], reasons={"zz": "no coach"})
