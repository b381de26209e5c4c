# coaching-platform task runner. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PY := .venv/bin/python
SAM := .venv-sam/bin/sam
export SAM_CLI_TELEMETRY := 0

.PHONY: help setup up test lint fire token openapi docs bench deploy validate clean fuzz

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## Install everything (virtualenv, DynamoDB Local, SAM CLI); idempotent
	@bash infra/bootstrap.sh --sam

up: ## Run the platform locally: DynamoDB Local, the API on :3000, rules, schedules, seeded demo
	@bash infra/bootstrap.sh
	@$(PY) -m coaching_local up

test: ## Run every check and test: ruff, template lint, unit, integration, end-to-end, layer build
	@bash infra/test.sh

lint: ## ruff and the template checks only
	@bash infra/test.sh --lint-only

fire: ## Fire a schedule of the running local stack now: make fire SCHEDULE=RosterRefresh
	@$(PY) -m coaching_local fire $(SCHEDULE)

token: ## Print a local development token: make token ROLE=org_admin [ORG=..] [PERSON=..]
	@$(PY) -m coaching_local token --role $(ROLE) $(if $(ORG),--org $(ORG)) $(if $(PERSON),--person $(PERSON))

fuzz: ## Fuzz every API operation with every role for 10+ minutes: make fuzz [FUZZ_MINUTES=10] [FUZZ_MAX_EXAMPLES=50]
	@bash infra/bootstrap.sh
	@FUZZ_MINUTES=$(or $(FUZZ_MINUTES),10) FUZZ_ROUNDS=$(or $(FUZZ_ROUNDS),1000) \
	  FUZZ_MAX_EXAMPLES=$(or $(FUZZ_MAX_EXAMPLES),50) FUZZ_SEED=$(or $(FUZZ_SEED),$$(date +%s)) \
	  $(PY) -m pytest tests/fuzz -m fuzz -p no:cacheprovider -q -rfE

openapi: ## Regenerate docs/openapi.json from the handlers
	@$(PY) -m coaching_local openapi --write docs/openapi.json

docs: ## Regenerate the generated docs: docs/openapi.json and docs/events.md
	@$(PY) -m coaching_local openapi --write docs/openapi.json
	@$(PY) infra/events_doc.py

bench: ## Run the benchmarks under bench/ and print figures and ratios
	@bash infra/bootstrap.sh
	@$(PY) -m bench

validate: ## cfn-lint and sam validate --lint on template.yaml
	@bash infra/bootstrap.sh --sam
	@.venv/bin/cfn-lint template.yaml
	@AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-eu-west-1} $(SAM) validate --lint

deploy: ## Build (arm64 layer) and deploy with sam deploy --guided
	@bash infra/bootstrap.sh --sam
	@PATH="$(CURDIR)/.venv/bin:$$PATH" $(SAM) build   # sam's Python builder needs python3.12 on PATH
	@$(SAM) deploy --guided

clean: ## Remove build output and local data (keeps the virtualenvs)
	rm -rf .aws-sam .local .pytest_cache .ruff_cache
