#!/usr/bin/env bash
# The one test command (README, `make test`, .ci/run): sets up what is missing, then runs
# ruff, the template checks, and pytest (unit, integration on DynamoDB Local started by the
# test session, end-to-end over HTTP against the local stack, and the layer build).
# Extra arguments go to pytest, e.g. `bash infra/test.sh -k people`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LINT_ONLY=0
if [[ "${1:-}" == "--lint-only" ]]; then LINT_ONLY=1; shift; fi

bash infra/bootstrap.sh --sam
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-eu-west-1}" SAM_CLI_TELEMETRY=0

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step "ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
step "mypy --strict (coaching/)"
.venv/bin/mypy
step "cfn-lint template.yaml"
.venv/bin/cfn-lint template.yaml
step "sam validate --lint"
.venv-sam/bin/sam validate --lint
[[ "$LINT_ONLY" == 1 ]] && exit 0

step "pytest"
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [[ $status -eq 5 ]]; then
  # Exit 5 means the selection matched no test (e.g. a -k filter): say so plainly.
  echo "pytest collected no tests for this selection; nothing failed."
  exit 0
fi
exit $status
