"""Every benchmark still runs end to end, at a tiny size, and prints its table.

`make bench` is not part of `make test` (its figures need an idle machine), so a benchmark could rot
unnoticed: a renamed route, a step that no longer produces anything, a floor that replays nothing. This
runs each one as `make bench` does (`python -m bench NAME ...`, its own DynamoDB Local) and checks what it
printed. No timing is asserted: the figures of a tiny run on a busy machine mean nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# (benchmark, its options, lines the output must contain: each a regular expression)
RUNS = [
    (
        "booking",
        ["--bookings", "4"],
        [
            r"handler in-process\s+[\d.]+ ms\s+[\d.]+ ms\s+[\d.]+x",
            r"through the local API \(HTTP\)\s+[\d.]+ ms\s+[\d.]+ ms\s+[\d.]+x",
            r"DynamoDB round trips per booking: 2\.0 \(target <= 2\); 5\.0 read units, 16\.0 write units",
        ],
    ),
    (
        "matching",
        ["--coaches", "60", "--requests", "4", "--warmup", "1"],
        [
            r"round trips of the last request \(the floor replays these\): BatchGetItem\(\d+\), BatchGetItem\(\d+\), "
            r"TransactWriteItems\(3\)",
            r"handler in-process\s+[\d.]+ ms\s+[\d.]+ ms\s+[\d.]+x",
            r"speed-up p50\s+[\d.]+x",
            r"capacity per match: [1-9][\d.]* read units, [1-9][\d.]* write units",
        ],
    ),
    (
        "hr_webhooks",
        ["--batches", "2"],
        [
            r"through the local API \(HTTP\)\s+[\d.]+ ms\s+[\d.]+ ms\s+[\d.]+x",
        ],
    ),
    (
        "people_import",
        ["--sizes", "30"],
        [
            r"^\s+30\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+$",
        ],
    ),
    (
        "reports",
        ["--people", "400", "--months", "2", "--runs", "1"],
        [
            r"items read (\d+) -> \1",
            r"GET /orgs/\{org\}/reports/\{period\}, 10x sessions \(Query",
            r"through the local API \(HTTP\)\s+[\d.]+ ms\s+[\d.]+ ms\s+[\d.]+x",
        ],
    ),
    (
        "cost",
        ["--engagements", "2", "--sessions-per-engagement", "2"],
        [
            r"^\s+book\s+[1-9]\d*\s+[1-9]\d*\s+[1-9]\d*",
            r"^\s+complete\s+[1-9]\d*\s+[1-9]\d*\s+[1-9]\d*",
            r"^\s+report\s+[1-9]\d*\s+[1-9]\d*\s+[1-9]\d*\s+\d+\s+\d+\s+[1-9]\d*",  # S3 PUTs of the rendered report
            r"total USD per 1,000 delivered sessions: 0\.\d+",
        ],
    ),
    (
        "cohort_jobs",
        ["--coaches", "150", "--participants", "320"],  # above SYNC_COHORT (300): a background job
        [
            r"plan ready after [\d.]+ s \([1-9]\d* progress states seen\); matched [1-9]\d*",
        ],
    ),
]


@pytest.mark.parametrize(("name", "options", "expected"), RUNS, ids=[run[0] for run in RUNS])
def test_benchmark_runs_and_prints_its_table(name: str, options: list[str], expected: list[str]) -> None:
    # The benchmark starts and configures its own DynamoDB Local; nothing of the test session's may leak in.
    inherited = ("AWS_", "MAIN_TABLE", "CONFIDENTIAL_TABLE")
    env = {key: value for key, value in os.environ.items() if not key.startswith(inherited)}
    result = subprocess.run(
        [sys.executable, "-m", "bench", name, *options],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    output = result.stdout
    assert result.returncode == 0, f"{name} failed:\n{output[-3000:]}\n{result.stderr[-3000:]}"
    for pattern in expected:
        assert re.search(pattern, output, re.MULTILINE), f"{name}: no line matches {pattern!r} in:\n{output[-3000:]}"
    assert '"level":' not in output, f"{name}: function logs leaked into the table:\n{output[-3000:]}"
