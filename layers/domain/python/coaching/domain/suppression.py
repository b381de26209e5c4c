"""Small-group suppression: which cells of a set of linked tables may be published.

A report is a set of cells (a group of people and one measure over them) linked by additive equations,
`parent = child_1 + ... + child_n`: the org total is the sum of each dimension's cells, a dimension's cell
the sum of its cells crossed with any other dimension, a group's people the sum of its distribution buckets.
Every view the platform serves (tables, filters, pairs of filters, distributions, exports) reads cells of one
such system, with one suppression status per cell, so a cell hidden in one view is hidden in all of them.

The rules, applied to a fixpoint (docs/privacy.md says why each is needed):

1. **Primary**: a cell counting fewer than `k` distinct contributors is suppressed, zero included (a 0 % or
   100 % bucket reveals every member's answer).
2. **Complementary**, for every equation with a published parent: the suppressed children are none, or at
   least two whose contributors add up to at least `k`. Otherwise the smallest published child is suppressed
   too (ties broken by key, so the answer is deterministic). The remainder an attacker can compute (parent
   minus published children) is then a group of at least `k` people, at least two cells wide, so neither
   subtraction nor a member removing their own contribution isolates anyone.
3. For an equation whose parent is suppressed: at least one child is suppressed too, otherwise the parent is
   the sum of what is published.

The rules are necessary conditions; `tests/unit/test_suppression_properties.py` checks they are sufficient on
random orgs by the linear-programming attack (every suppressed cell keeps a range, not a point).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Equation[K: Hashable]:
    """`parent` is the sum of `children`, for every additive measure of the cells."""

    parent: K
    children: tuple[K, ...]


@dataclass(frozen=True, slots=True)
class Protection[K: Hashable]:
    """The outcome: which cells are hidden, and why (`primary` below k, or `complementary`)."""

    suppressed: frozenset[K]
    primary: frozenset[K]
    reasons: Mapping[K, str] = field(default_factory=dict)

    def published(self, cell: K) -> bool:
        return cell not in self.suppressed


PRIMARY_RULE = "minimum_group"
COMPLEMENTARY_RULE = "complementary_suppression"


def _order(key: Hashable) -> str:
    return repr(key)


def protect[K: Hashable](
    counts: Mapping[K, int],
    equations: Sequence[Equation[K]],
    k: int,
    *,
    already: Iterable[K] = (),
) -> Protection[K]:
    """Suppress every cell that must be hidden for `counts` (distinct contributors per cell) and `k`.

    `already` are cells hidden for another reason (e.g. the same group's people count is hidden): they
    count as primary. Cells missing from `counts` count zero contributors.
    """
    if k < 1:
        raise ValueError("k must be at least 1")

    def size(cell: K) -> int:
        return counts.get(cell, 0)

    cells: set[K] = set(counts)
    for equation in equations:
        cells.add(equation.parent)
        cells.update(equation.children)
    primary = {cell for cell in cells if size(cell) < k} | set(already)
    suppressed = set(primary)
    reasons: dict[K, str] = dict.fromkeys(primary, PRIMARY_RULE)
    by_cell: dict[K, list[Equation[K]]] = {}
    for equation in equations:
        for cell in (equation.parent, *equation.children):
            by_cell.setdefault(cell, []).append(equation)
    pending = list(equations)
    queued = set(range(len(pending)))
    index = {id(eq): i for i, eq in enumerate(pending)}

    def hide(cell: K) -> None:
        suppressed.add(cell)
        reasons.setdefault(cell, COMPLEMENTARY_RULE)
        for equation in by_cell.get(cell, ()):
            i = index[id(equation)]
            if i not in queued:
                queued.add(i)
                pending.append(equation)

    while pending:
        equation = pending.pop()
        queued.discard(index[id(equation)])
        while True:
            hidden = [c for c in equation.children if c in suppressed]
            visible = sorted((c for c in equation.children if c not in suppressed), key=lambda c: (size(c), _order(c)))
            if equation.parent in suppressed:
                if hidden or not visible:
                    break
                hide(visible[0])
                continue
            if not hidden or (len(hidden) >= 2 and sum(size(c) for c in hidden) >= k):
                break
            if visible:
                hide(visible[0])
                continue
            # Every child is hidden and together they are still too few: the parent goes too.
            hide(equation.parent)
            break
    return Protection(suppressed=frozenset(suppressed), primary=frozenset(primary), reasons=reasons)
