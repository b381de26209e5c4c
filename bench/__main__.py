"""Run every benchmark under bench/ and print figures and ratios."""

from bench import cold_start, people_import


def main() -> None:
    cold_start.main([])
    print()
    people_import.main([])


if __name__ == "__main__":
    main()
