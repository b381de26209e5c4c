"""Cold-start cost of each function's import, against a bare import of the card's packages.

Each sample is a fresh interpreter (as a new Lambda sandbox is) that times its own imports;
interpreter start-up is the same for both sides and left out. Function and baseline samples
are interleaved so that machine noise hits both alike. Target: ratio <= 1.25 per function.

Both sides import bytecode, as deployed: the third-party packages from the virtualenv (pip
compiles them on install), the coaching package from the layer's own build step
(`make -C layers/domain package`), which the layer ships compiled to read-only /opt.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Every function in the repository: a new one is measured without anyone adding it here.
FUNCTIONS = sorted(path.parent.name for path in (ROOT / "functions").glob("*/app.py"))
TARGET_RATIO = 1.25

# The card's packages, used as the card prescribes: boto3, pydantic, PynamoDB, and Powertools'
# Logger, Metrics, Tracer and REST resolver with pydantic validation, each instantiated once.
BASELINE = """
import time
t0 = time.perf_counter()
import boto3
import pydantic
import pynamodb.models
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
Logger(); Metrics(); Tracer(); APIGatewayRestResolver(enable_validation=True)
print(time.perf_counter() - t0)
"""

FUNCTION = """
import importlib.util, sys, time
sys.path.insert(0, sys.argv[2])  # the built layer's python/, as Lambda puts /opt/python
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
elapsed = time.perf_counter() - t0
assert sys.modules["coaching"].__file__.startswith(sys.argv[2]), "coaching imported from outside the layer"
print(elapsed)
"""

ENV = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "MAIN_TABLE_NAME": "bench-MainTable",
    "CONFIDENTIAL_TABLE_NAME": "bench-ConfidentialTable",
    "EVENT_BUS_NAME": "bench",
    "POWERTOOLS_METRICS_NAMESPACE": "Bench",
    "POWERTOOLS_TRACE_DISABLED": "true",
}


def sample(code: str, *args: str, service: str = "baseline") -> float:
    env = {**os.environ, **ENV, "POWERTOOLS_SERVICE_NAME": service}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def build_layer_package(artifacts: Path) -> Path:
    """The coaching package exactly as the layer ships it; returns the layer's python/."""
    subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-s",
            "-C",
            str(ROOT / "layers" / "domain"),
            "package",
            f"ARTIFACTS_DIR={artifacts}",
            f"PYTHON={sys.executable}",
        ],
        check=True,
    )
    return artifacts / "python"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15, help="samples per function and per baseline")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="layer-") as artifacts:
        return measure(args.runs, build_layer_package(Path(artifacts)))


def measure(runs: int, layer_site: Path) -> int:
    print(f"cold-start import time, median of {runs} fresh interpreters (baseline interleaved)")
    print(f"{'function':<20}{'import ms':>11}{'baseline ms':>13}{'ratio':>8}  target <= {TARGET_RATIO}")
    worst = 0.0
    for name in FUNCTIONS:
        app = str(ROOT / "functions" / name / "app.py")
        own, base = [], []
        for _ in range(runs):
            base.append(sample(BASELINE))
            own.append(sample(FUNCTION, app, str(layer_site), service=name))
        own_ms, base_ms = statistics.median(own) * 1000, statistics.median(base) * 1000
        ratio = own_ms / base_ms
        worst = max(worst, ratio)
        verdict = "ok" if ratio <= TARGET_RATIO else "OVER"
        print(f"{name:<20}{own_ms:>11.1f}{base_ms:>13.1f}{ratio:>8.2f}  {verdict}")
    print(f"worst ratio {worst:.2f} (target {TARGET_RATIO})")
    return 0 if worst <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
