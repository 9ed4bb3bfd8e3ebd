#!/usr/bin/env bash
# The live path without GPUs: telemetry simulate serves the bundled fleet as 31 dcgm-exporters
# on 127.0.0.1:9400-9430, and the pipeline (mode all, embedded store) scrapes them every 5 s.
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/telemetry ./app # the flags of go run ./app and make build: one build cache
targets=$(mktemp -t telemetry-targets-XXXX.json)
bin/telemetry simulate --targets-file="$targets" &
sim=$!
trap 'kill $sim 2>/dev/null || true; rm -f "$targets"' EXIT
trap 'exit 0' INT TERM # Ctrl-C is the way to stop: not an error
for _ in $(seq 50); do [ -s "$targets" ] && break; sleep 0.1; done
echo "run-live: scraping the simulator; see http://localhost:8080/api/v1/targets and /api/v1/gpus" >&2
bin/telemetry --scrape-targets-file="$targets" --scrape-interval=5s "$@" || {
	status=$?
	[ $status -eq 130 ] && exit 0 # ended by Ctrl-C
	exit $status
}
