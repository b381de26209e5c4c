"""Run every benchmark under bench/ and print figures and ratios."""

from bench import cold_start


def main() -> None:
    cold_start.main()


if __name__ == "__main__":
    main()
