# telemetry-pipeline — run `make help` for the targets.

GO          ?= go
BIN         ?= bin/telemetry
SWAG        := $(GO) run github.com/swaggo/swag/cmd/swag@v1.16.6
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Tests use this server to create a fresh database each; the password matters only where the
# server asks for one (a cluster that scripts/ensure-services.sh set up).
export TEST_DATABASE_URL ?= postgres://postgres:postgres@127.0.0.1:5432/postgres?sslmode=disable

.DEFAULT_GOAL := help
.PHONY: proto help build run run-live run-split bench bench-month bench-year bench-api bench-capacity setup-local-env local-status local-logs local-cleanup setup-kind-env setup-kind-one kind-status kind-logs kind-cleanup test test-short cover services arch swagger swagger-check console-vendor screenshots lint fmt clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build the binary into bin/telemetry (the flags of go run ./app: one build cache; the image builds its own, static)
	$(GO) build -o $(BIN) ./app

run: ## Run every module in one process on the embedded store (go run ./app)
	$(GO) run ./app

run-live: ## Serve the simulated fleet of 31 dcgm-exporters and run the pipeline scraping it every 5s
	@scripts/run-live.sh

run-split: ## Run 2 streamers, 2 collectors and the API as separate processes on local PostgreSQL and Redis
	@scripts/run-split.sh

services: ## Make sure PostgreSQL and Redis answer on 127.0.0.1 (starting or installing them)
	@scripts/ensure-services.sh

test: services ## Everything: vet, formatting, architecture, unit and integration tests (race detector on)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	# The slowest package, app/integration, takes about 4 minutes on two cores (its slow tests
	# in parallel); the timeout is there to stop a hung test, well clear of a slow machine's run.
	CI=true $(GO) test -race -count=1 -timeout 25m ./...

test-short: ## Unit and integration tests without the race detector (integration tests skip without servers)
	$(GO) test -count=1 ./...

cover: services ## Test with coverage; writes coverage.out and prints the total
	CI=true $(GO) test -count=1 -coverpkg=./... -coverprofile=coverage.out ./...
	$(GO) tool cover -func=coverage.out | tail -n 1

arch: ## Check the import rules (domain/ and ports/ free of frameworks, adapters independent)
	$(GO) test -count=1 -run TestArchitecture ./app

proto: ## Regenerate the queue payload's Go code from adapters/asynqqueue/queuepb/batch.proto (needs protoc: Debian's protobuf-compiler)
	GOBIN=$(CURDIR)/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	cd adapters/asynqqueue/queuepb && PATH=$(CURDIR)/bin:$$PATH protoc --go_out=. --go_opt=paths=source_relative batch.proto

swagger: ## Regenerate the OpenAPI description in docs/ from the handlers' annotations
	$(SWAG) fmt -d adapters/httpapi
	$(SWAG) init -g router.go -d adapters/httpapi -o docs --outputTypes go,json,yaml

console-vendor: ## Vendor the web console's front-end packages from npm (adapters/console/package-lock.json) into its static/vendor
	@scripts/console-vendor.sh

screenshots: services ## Take the console's screenshots in docs/console with headless Chromium
	TELEMETRY_SCREENSHOTS=1 $(GO) test -count=1 -run TestConsole ./app/integration

lint: ## go vet, gofmt and staticcheck
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(STATICCHECK) ./...

fmt: ## Format the code
	gofmt -w $$(git ls-files '*.go')

clean: ## Remove build output and the default embedded database
	rm -rf bin coverage.out telemetry.db telemetry.db-shm telemetry.db-wal

bench-capacity: services ## The capacity model's runs (docs/scaling.md): 50-field exporters scraped every 10s at 10k, 30k and 100k series
	TELEMETRY_BENCH_CAPACITY=1 $(GO) test -run '^$$' -bench BenchmarkCapacity -benchtime 1x -timeout 30m ./app/bench

bench-api: services ## Load 10M samples into PostgreSQL (kept in telemetry_bench) and measure the API under load
	TELEMETRY_BENCH_API=1 $(GO) test -run '^$$' -bench BenchmarkAPI -benchtime 1x -timeout 30m ./app/bench

bench-month: services ## A month of a fleet every 10s (TELEMETRY_BENCH_MONTH_GPUS, 31) in PostgreSQL and Prometheus: month-long PromQL panels against Prometheus
	TELEMETRY_BENCH_MONTH=1 $(GO) test -run '^$$' -bench BenchmarkPromQLMonth -benchtime 1x -timeout 120m ./app/bench

bench-year: services ## A year of 10 GPUs every 10s fast-forwarded into PostgreSQL (retention and tiers as in production) and VictoriaMetrics: what each keeps
	TELEMETRY_BENCH_YEAR=1 $(GO) test -run '^$$' -bench BenchmarkYear -benchtime 1x -timeout 150m ./app/bench

bench: services ## Ingestion benchmarks: baseline COPY, mode all (PostgreSQL, SQLite), split 1×1, 3×3, 10×10; remote_write against VictoriaMetrics; the scraper at 1,000 targets; bytes on disk against VictoriaMetrics; PromQL panels against Prometheus
	TELEMETRY_BENCH_PIPELINE=1 $(GO) test -run '^$$' -bench 'BenchmarkPipeline|BenchmarkLive' -benchtime 1x -timeout 60m ./app/bench

# Docker (needs a Docker engine). The compose file is validated offline by make test.
COMPOSE ?= docker compose

setup-local-env: .env ## Build the image and start PostgreSQL, Redis, Adminer and the split pipeline (STREAMER_INSTANCES, COLLECTOR_INSTANCES, API_GW_INSTANCES)
	$(COMPOSE) up -d --build

# Random passwords for compose's PostgreSQL and Redis, once: they must stay what the
# volumes were created with.
.env:
	@umask 077; sed -e "s/^POSTGRES_PASSWORD=.*/POSTGRES_PASSWORD=$$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 32)/" \
	  -e "s/^REDIS_PASSWORD=.*/REDIS_PASSWORD=$$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 32)/" .env.example > .env
	@echo "wrote .env with random passwords (Adminer: user telemetry, password POSTGRES_PASSWORD in .env)"

local-status: ## Show the local containers
	$(COMPOSE) ps

local-logs: ## Follow the pipeline's logs
	$(COMPOSE) logs -f api collector streamer

local-cleanup: ## Stop the local setup and delete its volumes
	$(COMPOSE) down -v --remove-orphans

# Kubernetes in Docker (needs Docker, kind, kubectl and helm): an edge cluster of streamers
# publishing to a central one with PostgreSQL, Redis, the collectors and the API. make test
# renders and validates both offline. KIND_EDGE_NODES, KIND_CENTRAL_NODES,
# STREAMER_INSTANCES, COLLECTOR_INSTANCES and API_GW_INSTANCES size them.
KIND_CLUSTER ?= telemetry
IMAGE ?= telemetry-pipeline:0.1.0
export IMAGE
setup-kind-env: ## Create the edge and central kind clusters, load the image and install both releases
	@scripts/kind-env.sh up

kind-status: ## Show both clusters' pods, services and autoscalers
	@scripts/kind-env.sh status

kind-logs: ## Follow a cluster's pipeline logs (CLUSTER=central, the default, or edge)
	@scripts/kind-env.sh logs $(or $(CLUSTER),central)

kind-cleanup: ## Delete both kind clusters
	@scripts/kind-env.sh cleanup

setup-kind-one: ## One kind cluster with everything in it (values-same-cluster)
	kind create cluster --name $(KIND_CLUSTER) --config deploy/kind/kind-config.yaml
	docker build -f deploy/Dockerfile -t $(IMAGE) .
	kind load docker-image $(IMAGE) --name $(KIND_CLUSTER)
	helm upgrade --install telemetry-pipeline deploy/helm/telemetry-pipeline \
		-f deploy/helm/telemetry-pipeline/values-same-cluster.yaml --wait --timeout 5m
