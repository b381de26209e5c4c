"""Run the benchmarks under bench/ and print figures and ratios (make bench).

python -m bench                       # every benchmark, default sizes
python -m bench booking invoicing     # only these
python -m bench invoicing --quick     # options after a single name go to that benchmark
"""

import sys
from collections.abc import Callable

from bench import (
    booking,
    cohort_jobs,
    cohort_match,
    cold_start,
    cost,
    hr_webhooks,
    invoicing,
    matching,
    people_import,
    reports,
)

BENCHMARKS: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "cold_start": ("cold start", cold_start.main),
    "people_import": ("people import", people_import.main),
    "matching": ("on-demand matching", matching.main),
    "cohort_match": ("cohort matching", cohort_match.main),
    "booking": ("booking", booking.main),
    "invoicing": ("monthly invoicing", invoicing.main),
    "hr_webhooks": ("HR webhooks", hr_webhooks.main),
    "cohort_jobs": ("cohort launch as a background job", cohort_jobs.main),
    "cost": ("cost of 1,000 delivered sessions", cost.main),
    "reports": ("reports from rollups", reports.main),
}


def main(argv: list[str] | None = None) -> None:
    rest = list(sys.argv[1:] if argv is None else argv)
    names: list[str] = []
    while rest and rest[0] in BENCHMARKS:
        names.append(rest.pop(0))
    if rest and rest[0] == "--":
        rest.pop(0)
    if rest and not rest[0].startswith("-"):
        raise SystemExit(f"unknown benchmark {rest[0]!r}; choose from: {', '.join(BENCHMARKS)}")
    if rest and len(names) != 1:
        raise SystemExit("options go to one benchmark, e.g. python -m bench invoicing --quick")
    for name in names or list(BENCHMARKS):
        title, run = BENCHMARKS[name]
        print(f"\n=== {title}")
        run(rest)


if __name__ == "__main__":
    main()
