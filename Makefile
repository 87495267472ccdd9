# The two commands of the README are `make run` and `make test`; the rest are their parts.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := uv

.PHONY: help setup run test lint unit integration faults bench brokers brokers-stop cluster cluster-down clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup:  ## install uv if missing and the locked environment
	@scripts/setup.sh

run:  ## brokers + the four services, and VIP actions arriving live (Ctrl-C stops all)
	@scripts/run.sh

test: setup lint  ## the whole suite: lint, types, unit, integration, containers, faults
	@scripts/observability.sh install
	$(UV) run pytest tests

lint: setup  ## ruff, mypy, the layout contracts (import-linter) and hadolint
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	$(UV) run lint-imports
	$(UV) run hadolint services/*/Dockerfile deploy/images/*/Dockerfile

unit: setup  ## pure logic only, no brokers
	$(UV) run pytest tests/unit

integration: setup  ## real Kafka, RabbitMQ and schema registry (started locally unless KAFKA_BOOTSTRAP_SERVERS/RABBITMQ_URL/SCHEMA_REGISTRY_URL are set), Chromium, Prometheus
	@scripts/observability.sh install
	$(UV) run pytest tests/integration

faults: setup  ## restarts and kills on a broker pair of its own (~8 min), writes docs/RELIABILITY.md
	$(UV) run pytest tests/faults

bench: setup brokers  ## benchmarks vs ceilings and peers (10-20 min), writes docs/PERFORMANCE.md; BENCH_ARGS=--quick for a smoke run
	$(UV) run python -m bench $(BENCH_ARGS)

brokers:  ## start the local Kafka, RabbitMQ and schema registry
	@scripts/brokers.sh start

brokers-stop:  ## stop them
	@scripts/brokers.sh stop

cluster:  ## a one-node Kubernetes here (built from Go modules on first run, ~12 min), prints its exports
	@scripts/local-k8s.sh install
	@scripts/local-k8s.sh up

cluster-down:  ## stop that cluster and undo its host changes
	@scripts/local-k8s.sh down

clean:  ## stop the brokers and remove everything under .local/
	-@scripts/brokers.sh stop
	rm -rf .local
