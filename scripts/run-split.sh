#!/usr/bin/env bash
# Runs the pipeline split as in production, on the local PostgreSQL and Redis: 2 streamers
# (each its shard of the GPUs), 2 collectors and 1 API with the queue UI. Ctrl-C stops all.
#   API:       http://localhost:8080/api/v1/stats   Swagger: /swagger/index.html
#   Queue UI:  http://localhost:8080/queues
#   Probes:    streamers on :8091 and :8092, collectors on :8093 and :8094
#   Prometheus: http://localhost:9090 scraping all five, when Debian's prometheus is
#              installed (PROMETHEUS=0: not started); deploy/prometheus/run-split.yml
set -euo pipefail
cd "$(dirname "$0")/.."

DB=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/telemetry?sslmode=disable}
REDIS=${REDIS_URL:-redis://127.0.0.1:6379/0}
BIN=bin/telemetry

# The servers must answer; this script installs and kills nothing (make services starts them,
# installing Debian's packages when missing). The database is created by the first process.
for svc in "PostgreSQL 5432" "Redis 6379"; do
	set -- $svc
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then
		echo "run-split: $1 does not answer on 127.0.0.1:$2: start it, or run make services" >&2
		exit 1
	fi
done
go build -o "$BIN" ./app # the flags of go run ./app and make build: one build cache

pids=()
# Ctrl-C reaches every process of the terminal's group, which stop by themselves (a second
# signal would cut their shutdown short): the script waits for them. SIGTERM, or a process
# failing, stops the others. Either way is not an error.
cleanup() { wait || true; rm -rf "${prom_data:-}"; }
stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; cleanup; }
trap 'cleanup; exit 0' INT
trap 'stop; exit 0' TERM
trap stop EXIT
run() { "$BIN" --redis-url="$REDIS" "$@" & pids+=($!); }

run --mode=api --database-url="$DB" --http-addr=:8080 --queue-ui
run --mode=collector --database-url="$DB" --http-addr=:8093
run --mode=collector --database-url="$DB" --http-addr=:8094
sleep 1 # let the first collector create the schema before the streamers publish
run --mode=streamer --shard=0/2 --http-addr=:8091
run --mode=streamer --shard=1/2 --http-addr=:8092
if [ "${PROMETHEUS:-1}" != 0 ] && command -v prometheus >/dev/null 2>&1; then
	prom_data=$(mktemp -d)
	prometheus --config.file=deploy/prometheus/run-split.yml --storage.tsdb.path="$prom_data" \
		--web.listen-address=:9090 --log.level=warn &
	pids+=($!)
	echo "Prometheus: http://localhost:9090 (the pipeline's dashboard: deploy/helm/telemetry-pipeline/files/dashboards/pipeline-health.json)"
fi
wait
