"""Run every benchmark under bench/ and print figures and ratios (make bench)."""

from bench import booking, cohort_match, cold_start, matching, people_import


def main() -> None:
    for name, run in [
        ("cold start", cold_start.main),
        ("people import", people_import.main),
        ("on-demand matching", matching.main),
        ("cohort matching", cohort_match.main),
        ("booking", booking.main),
    ]:
        print(f"\n=== {name}")
        run([])


if __name__ == "__main__":
    main()
