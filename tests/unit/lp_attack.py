"""The linear-programming attack on a published set of linked tables (Fischetti & Salazar's attacker model).

The attacker knows every published cell, every additive equation linking the cells, and that every cell is at
least its lower bound (0 for counts). For each suppressed cell they minimise and maximise its value over every
table consistent with what is published: a cell is protected when the range is wider than a point.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np
from coaching.domain.suppression import Equation
from scipy.optimize import linprog

TOLERANCE = 1e-6


def attack[K: Hashable](
    values: Mapping[K, float],
    equations: Sequence[Equation[K]],
    suppressed: Iterable[K],
    *,
    lower: float | None = 0.0,
    known: Mapping[K, float] | None = None,
) -> dict[K, tuple[float, float]]:
    """For each suppressed cell, the (min, max) the attacker can prove; `known` are cells they know anyway."""
    hidden = sorted(set(suppressed) - set(known or {}), key=repr)
    position = {cell: i for i, cell in enumerate(hidden)}
    fixed = {**{c: v for c, v in values.items() if c not in position}, **(known or {})}
    rows, rhs = [], []
    for equation in equations:
        row = np.zeros(len(hidden))
        constant = 0.0
        for sign, cell in ((1.0, equation.parent), *((-1.0, c) for c in equation.children)):
            if cell in position:
                row[position[cell]] += sign
            else:
                constant += sign * fixed.get(cell, 0.0)
        if np.any(row):
            rows.append(row)
            rhs.append(-constant)
    ranges: dict[K, tuple[float, float]] = {}
    if not hidden:
        return ranges
    # The equations split the hidden cells into independent groups (cells linked by some equation): one small LP
    # per group gives the same ranges as one LP over all of them, much faster.
    parent = list(range(len(hidden)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for row in rows:
        used = np.flatnonzero(row)
        for j in used[1:]:
            parent[root(int(j))] = root(int(used[0]))
    groups: dict[int, list[int]] = {}
    for i in range(len(hidden)):
        groups.setdefault(root(i), []).append(i)
    for members in groups.values():
        columns = np.array(members)
        group_rows = [(row[columns], b) for row, b in zip(rows, rhs, strict=True) if np.any(row[columns])]
        a_eq = np.array([r for r, _ in group_rows]) if group_rows else None
        b_eq = np.array([b for _, b in group_rows]) if group_rows else None
        bounds = [(lower, None)] * len(members)
        for local, i in enumerate(members):
            objective = np.zeros(len(members))
            objective[local] = 1.0
            low = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
            high = linprog(-objective, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
            assert low.status in (0, 3), low.message
            assert high.status in (0, 3), high.message
            lo = low.fun if low.status == 0 else float("-inf")
            hi = -high.fun if high.status == 0 else float("inf")
            ranges[hidden[i]] = (lo, hi)
    return ranges


def pinned[K: Hashable](ranges: Mapping[K, tuple[float, float]]) -> dict[K, tuple[float, float]]:
    """The cells whose range is a point: the attack recovered them."""
    return {cell: r for cell, r in ranges.items() if r[1] - r[0] <= TOLERANCE}
