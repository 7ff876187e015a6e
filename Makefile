# The commands the README shows. Every target prepares what it needs first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .venv-tools
export PYTHONPATH := $(CURDIR)
# Code that runs in this process (tests, tools) traces nothing; the functions in the local runtime get the
# template's own environment, tracing included.
export POWERTOOLS_TRACE_DISABLED ?= true
export POWERTOOLS_SERVICE_NAME ?= coupon
export SAM_CLI_TELEMETRY ?= 0
# A stack named on the command line (or in the environment) means a deployed one; none means the local stack.
STACK_GIVEN := $(STACK)
STACK ?= coupon-dev
# Where the local servers and the AWS emulator listen, and the developer's keys, are set by the local tools
# themselves (localdev/environment.py): nothing local is exported here, so `make deploy` meets only yours.

.PHONY: help run token test unit explore docs faults bench simulate loadtest redrive lock reconcile deploy front-door-waf delete venv services services-down migrate lint typecheck check-template ci clean

help:
	@echo "make run    - start MariaDB, Redis and the SQS emulator if needed, migrate, serve the API on http://127.0.0.1:3000"
	@echo "make token USER_ID=42 [ADMIN=1] - a token for the local API (admin routes need ADMIN=1)"
	@echo "make test   - the same preparation, then the whole test suite"
	@echo "make unit   - the unit tests alone (no server, seconds);  make explore - the issuing protocol, long run"
	@echo "make lint   - ruff and mypy;  make check-template - cfn-lint, checkov, sam build, the deploy rehearsal;  make docs - the site"
	@echo "make deploy PARAMETERS=my-account.json - deploy to your account;  make front-door-waf - the front door's web ACL (us-east-1)"

venv: $(VENV)/.installed

$(VENV)/.installed: requirements/dev.txt layers/couponcore/requirements.txt layers/couponcore/pyproject.toml scripts/venv.sh
	scripts/venv.sh
	@touch $@

services: venv
	scripts/services.sh up
	scripts/services.sh iam
	scripts/sqs_emulator.sh up

services-down:
	scripts/services.sh down
	scripts/sqs_emulator.sh down
	scripts/prometheus.sh down

migrate: services
	$(PY) -m localdev.migrate

# Every function of template.yaml on the local Lambda runtime, behind the local HTTP API, as deployed
# (identity on: see `make token`). LOCAL_AUTH=dev trusts the body's userId instead.
# PROMETHEUS=1 also starts Prometheus scraping the stack's /metrics (see observability/).
run: migrate
	@if [ "$${PROMETHEUS:-0}" = 1 ]; then scripts/prometheus.sh up; fi
	$(PY) -m localdev.api_server

# A token the local API accepts: make token USER_ID=42, or USER_ID=1 ADMIN=1 for the admin routes.
token: venv
	@case "$(USER_ID)" in ''|*[!0-9]*) echo "usage: make token USER_ID=<numeric user id> [ADMIN=1]" >&2; exit 2;; esac
	@$(PY) -m localdev.jwt_local --user $(USER_ID) $(if $(filter 1,$(ADMIN)),--admin,)

test: services
	scripts/services.sh browser
	@echo "[test] unit, integration, e2e and infrastructure suites (about 2 minutes; make faults runs the fault suite)"
	$(PY) -m pytest

# The unit tests: services on in-memory fakes, the domain, the template's shape. No server needed.
unit: venv
	$(PY) -m pytest tests/unit

# The issuing protocol explored under every fault (tests/unit/test_issuing_protocol.py) with a long budget:
# EXAMPLES=20000 by default (CI runs 150).
explore: venv
	EXPLORE_EXAMPLES=$(or $(EXAMPLES),20000) $(PY) -m pytest tests/unit/test_issuing_protocol.py --hypothesis-show-statistics -q

# The fault suite: a sale on all three paths while its own MariaDB, Redis and fault proxies break;
# writes tests/faults/results/latest.md.
faults: services
	@echo "[faults] twelve faults, each during a sale on all three paths, and checkout under three of them (about 7 minutes)"
	$(PY) -m pytest tests/faults -m faults

# The benchmark runner (bench/run.py), load from wrk; QUICK=1 runs seconds per case and writes nothing.
bench: migrate
	scripts/services.sh wrk
	$(PY) -m bench.run $(if $(filter 1,$(QUICK)),--quick,)

# A sale at scale on the service layer, counted per tier beside the capacity model (docs/capacity.md);
# QUICK=1: 20,000 requests for 1,000 seats (CI); by default 1,000,000 requests for 100,000 seats.
simulate: migrate
	@echo "[simulate] the V2 use case at scale against MariaDB, Redis and the SQS emulator"
	$(PY) -m bench.simulate $(if $(filter 1,$(QUICK)),--quick,) $(ARGS)

# One reconciliation pass by hand, through ReconcileFunction (the running stack also runs one every minute).
reconcile: migrate
	$(PY) -m localdev.reconcile

# A flash sale against the local stack (started if none answers); ARGS="--route v1 --users 2000" etc.
loadtest: migrate
	$(PY) -m loadtest.run $(ARGS)

# Dead-lettered reservations back to the issue queue: a count first; MOVE=1 moves them. STACK=<name> for a
# deployed stack (its outputs name the queues), else the local stack's queues.
redrive: venv
	$(PY) scripts/redrive.py $(if $(STACK_GIVEN),--stack $(STACK_GIVEN),) $(if $(filter 1,$(MOVE)),--move,)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

$(TOOLS)/.installed: requirements/tools.txt
	python3 -m venv $(TOOLS)
	@echo "[tools] sam, cfn-lint, uv (locked: requirements/tools.txt)"
	$(TOOLS)/bin/pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements/tools.txt
	@touch $@

CHECKOV := .venv-checkov
$(CHECKOV)/.installed: requirements/checkov.txt
	python3 -m venv $(CHECKOV)
	@echo "[tools] checkov (locked: requirements/checkov.txt)"
	$(CHECKOV)/bin/pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements/checkov.txt
	@touch $@

# sam build needs the runtime's Python (python3.13) on PATH, whatever Python .venv has.
SAM_BUILD = PATH="$$(scripts/python313.sh):$$PATH" $(TOOLS)/bin/sam build --template template.yaml

# cfn-lint, sam validate, checkov (skips and their reasons: .checkov.yaml) and a container-less sam build of
# every function and the layer.
check-template: $(TOOLS)/.installed $(CHECKOV)/.installed venv
	@echo "[check-template] cfn-lint"
	$(TOOLS)/bin/cfn-lint template.yaml deploy/front-door-waf.yaml
	@echo "[check-template] sam validate --lint"
	$(TOOLS)/bin/sam validate --lint --template template.yaml
	@echo "[check-template] checkov"
	BC_SKIP_MAPPING=TRUE $(CHECKOV)/bin/checkov --config-file .checkov.yaml --file template.yaml --file deploy/front-door-waf.yaml  # offline: no guideline download
	@echo "[check-template] sam build (arm64, python3.13)"
	$(SAM_BUILD) --build-dir .aws-sam/build
	@echo "[check-template] deploy rehearsal: every documented parameter set (deploy/parameter-sets/)"
	$(PY) -m localdev.rehearsal --built .aws-sam/build

DOCS := .venv-docs
$(DOCS)/.installed: requirements/docs.txt
	python3 -m venv $(DOCS)
	@echo "[tools] mkdocs, mkdocs-material (locked: requirements/docs.txt)"
	$(DOCS)/bin/pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements/docs.txt
	@touch $@

# The documentation site (mkdocs.yml; the README is its home page) into site/. --strict: a broken link to a
# page, a heading or a file fails the build.
docs: $(DOCS)/.installed
	NO_MKDOCS_2_WARNING=1 $(DOCS)/bin/mkdocs build --strict

# Every lock file (exact versions and hashes) again from its .in file, after changing one.
lock: $(TOOLS)/.installed
	scripts/lock.sh

ci: lint docs check-template test

# Shipped in the layer at the template's DbCaBundle path (/opt/python/couponcore/certs/...).
RDS_CA_BUNDLE := layers/couponcore/couponcore/certs/rds-global-bundle.pem

# sam build + deploy with your parameter file (a copy of one in deploy/parameter-sets/ with your account's
# values), then the migrations through the stack's MigrateFunction. REGION=... or your AWS configuration's.
deploy: $(TOOLS)/.installed venv
	@[ -n "$(PARAMETERS)" ] || { echo "usage: make deploy PARAMETERS=<your copy of a deploy/parameter-sets/*.json> [STACK=$(STACK)] [REGION=...]" >&2; exit 2; }
	@echo "[deploy] AWS's RDS certificate authorities into the layer (the shipped copy stays if this fails)"
	curl -fsS --max-time 30 -o $(RDS_CA_BUNDLE).new https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem \
	  && mv $(RDS_CA_BUNDLE).new $(RDS_CA_BUNDLE) || rm -f $(RDS_CA_BUNDLE).new
	$(SAM_BUILD)
	$(PY) scripts/deploy.py --parameters $(PARAMETERS) --stack $(STACK) $(if $(REGION),--region $(REGION),)

# The front door's web ACL (deploy/front-door-waf.yaml) in us-east-1, where AWS WAF keeps CloudFront's; prints
# its ARN for FrontDoorWebAclArn. STAGE=dev by default, BOT_CONTROL=Yes adds Bot Control (and its price).
front-door-waf: $(TOOLS)/.installed
	$(TOOLS)/bin/sam deploy --template-file deploy/front-door-waf.yaml --stack-name coupon-front-door-$(or $(STAGE),dev) \
	  --region us-east-1 --no-fail-on-empty-changeset \
	  --parameter-overrides Stage=$(or $(STAGE),dev) BotControl=$(or $(BOT_CONTROL),No)
	@$(TOOLS)/bin/python -c "import boto3, sys; stack = boto3.client('cloudformation', region_name='us-east-1').describe_stacks(StackName=sys.argv[1])['Stacks'][0]; print('FrontDoorWebAclArn:', [o['OutputValue'] for o in stack['Outputs'] if o['OutputKey'] == 'WebAclArn'][0])" coupon-front-door-$(or $(STAGE),dev)

delete: $(TOOLS)/.installed
	$(TOOLS)/bin/sam delete --stack-name $(STACK) $(if $(REGION),--region $(REGION),)

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
