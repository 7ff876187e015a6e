# The commands the README shows. Every target prepares what it needs first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .venv-tools
export PYTHONPATH := $(CURDIR)
# Local runs: traces off (no X-Ray daemon here); metrics are flushed as EMF only inside Lambda.
export POWERTOOLS_TRACE_DISABLED ?= true
export POWERTOOLS_METRICS_DISABLED ?= true
export POWERTOOLS_SERVICE_NAME ?= coupon
export SAM_CLI_TELEMETRY ?= 0
# The local SQS API (LocalStack on the host, see scripts/sqs_emulator.sh); boto3 reads these.
export AWS_ENDPOINT_URL ?= http://127.0.0.1:4566
export AWS_ACCESS_KEY_ID ?= test
export AWS_SECRET_ACCESS_KEY ?= test
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help run test bench loadtest reconcile deploy delete venv services services-down migrate lint typecheck check-template ci clean

help:
	@echo "make run    - start MariaDB and Redis if needed, migrate, serve the API on http://127.0.0.1:3000"
	@echo "make test   - the same preparation, then the whole test suite"
	@echo "make lint   - ruff and mypy;  make check-template - cfn-lint and sam build"

venv: $(VENV)/.installed

$(VENV)/.installed: requirements/dev.txt layers/couponcore/requirements.txt layers/couponcore/pyproject.toml scripts/venv.sh
	scripts/venv.sh
	@touch $@

services: venv
	scripts/services.sh up
	scripts/sqs_emulator.sh up

services-down:
	scripts/services.sh down
	scripts/sqs_emulator.sh down
	scripts/prometheus.sh down

migrate: services
	$(PY) -m localdev.migrate

# PROMETHEUS=1 also starts Prometheus scraping the server's /metrics (see observability/).
run: migrate
	@if [ "$${PROMETHEUS:-0}" = 1 ]; then scripts/prometheus.sh up; fi
	DB_POOL_SIZE=$${DB_POOL_SIZE:-16} DB_MAX_OVERFLOW=$${DB_MAX_OVERFLOW:-16} $(PY) -m localdev.api_server

test: services
	$(PY) -m pytest

# The benchmark runner (bench/run.py); QUICK=1 runs seconds per case and writes nothing.
bench: migrate
	$(PY) -m bench.run $(if $(filter 1,$(QUICK)),--quick,)

# One reconciliation pass by hand (the local server also runs one every minute).
reconcile: migrate
	$(PY) -m localdev.reconcile

# A flash sale against the local server (started if none answers); ARGS="--route v1 --users 2000" etc.
loadtest: migrate
	$(PY) -m loadtest.flash_sale $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

$(TOOLS)/.installed: requirements/tools.txt
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --disable-pip-version-check -r requirements/tools.txt
	@touch $@

# cfn-lint and a container-less sam build of every function and the layer.
check-template: $(TOOLS)/.installed
	$(TOOLS)/bin/cfn-lint template.yaml
	$(TOOLS)/bin/sam validate --lint --template template.yaml
	$(TOOLS)/bin/sam build --template template.yaml --build-dir .aws-sam/build

ci: lint check-template test

# A real AWS account: the local defaults above (LocalStack endpoint, test keys) must not leak into it.
AWS_REAL := env -u AWS_ENDPOINT_URL $$( [ "$$AWS_ACCESS_KEY_ID" = test ] && echo -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY )
STACK ?= coupon-dev

# sam build + deploy (guided the first time: it asks for the parameters and saves them in samconfig.toml),
# then the migrations through the stack's MigrateFunction.
deploy: $(TOOLS)/.installed venv
	$(TOOLS)/bin/sam build --template template.yaml
	$(AWS_REAL) $(TOOLS)/bin/sam deploy --stack-name $(STACK) $(if $(wildcard .aws-sam/deployed-$(STACK)),,--guided)
	@touch .aws-sam/deployed-$(STACK)
	$(AWS_REAL) $(PY) scripts/migrate_aws.py $(STACK)

delete: $(TOOLS)/.installed
	$(AWS_REAL) $(TOOLS)/bin/sam delete --stack-name $(STACK)

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
