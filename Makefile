# FastHook: `make run` starts the embedded stack, `make test` runs every test. Both build .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint format bench package clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "pip<26.3"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m local.run

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile -q -p no:cacheprovider tests

lint: $(STAMP)
	$(BIN)/ruff check chalicelib app.py local infra tests
	$(BIN)/ruff format --check chalicelib app.py local infra tests

format: $(STAMP)
	$(BIN)/ruff format chalicelib app.py local infra tests

# Webhooks through the embedded stack at a fixed rate: latencies, AWS calls, $ per million (bench/results/).
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)
	$(BIN)/python -m bench.coldstart --write

# Fault run: webhooks at a steady rate while receivers 5xx/time out, workers crash, DynamoDB/SQS throttle and
# messages arrive twice; lost/overlaps/stuck must be 0 (bench/results/chaos-*). CHAOS_ARGS="--count 1000".
.PHONY: chaos
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

# schemathesis over every operation of /v1/openapi.json on the local server, far longer than `make test` runs
# it (FUZZ_EXAMPLES fresh examples per operation plus the coverage phase's boundary values); 0 failures expected.
.PHONY: fuzz
FUZZ_EXAMPLES ?= 100
fuzz: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/fuzz --fuzz-examples $(FUZZ_EXAMPLES) --fuzz-long

# SAM template + zips for a stage (STAGE=prod make package); chalice needs a region even to package.
STAGE ?= dev
package: $(STAMP)
	rm -rf build/package
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(BIN)/chalice package --stage $(STAGE) --merge-template infra/api_extras.json build/package

clean:
	rm -rf $(VENV) .pytest_cache

# CloudFormation for a stage without AWS (STAGE=prod make synth) into infra/cdk.out/, then cfn-lint.
# Fake credentials: synthesis never calls AWS, and must not be able to. The first run downloads the
# Lambda layer's arm64 wheels for requirements.txt (chalice caches them in .chalice/deployments/).
.PHONY: synth deploy
synth: $(STAMP)
	rm -rf infra/cdk.out
	cd infra && AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline AWS_SESSION_TOKEN=offline \
		AWS_EC2_METADATA_DISABLED=true AWS_DEFAULT_REGION=$${CDK_DEFAULT_REGION:-us-east-1} \
		CDK_DEFAULT_REGION=$${CDK_DEFAULT_REGION:-us-east-1} CDK_DEFAULT_ACCOUNT=$${CDK_DEFAULT_ACCOUNT:-111111111111} \
		JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 CDK_OUTDIR=cdk.out \
		CDK_CONTEXT_JSON='{"stage": "$(STAGE)"$(if $(ALARM_EMAIL),$(comma) "alarm_email": "$(ALARM_EMAIL)")}' \
		../$(BIN)/python app.py
	$(BIN)/cfn-lint infra/cdk.out/$(STAGE).template.json
	@echo "template: infra/cdk.out/$(STAGE).template.json"

# Deploy a stage (STAGE=prod ALARM_EMAIL=ops@example.com make deploy). Needs real AWS credentials and
# the cdk CLI through npx (node); run `cd infra && npx aws-cdk@2 bootstrap` once per account/region.
comma := ,
deploy: $(STAMP)
	cd infra && npx --yes aws-cdk@2 deploy -c stage=$(STAGE) $(if $(ALARM_EMAIL),-c alarm_email=$(ALARM_EMAIL)) \
		--require-approval broadening
