#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer on 127.0.0.1 (5432, 6379) for the integration tests,
# and that Debian's prometheus (the server the live-ingestion tests run), victoria-metrics
# (the baseline of make bench's live benchmarks) and chromium (the console's browser tests)
# are installed.
# A server that answers is used as it is. Otherwise the script starts it, installing Debian's
# postgresql / redis-server first when it is missing and we are root. It exits non-zero when
# a service cannot be had, so `make test` never passes with integration tests skipped.
set -euo pipefail

PG_PORT=5432
REDIS_PORT=6379
log() { printf 'ensure-services: %s\n' "$*" >&2; }

answers() { # host port
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

wait_for() { # name port seconds
	for _ in $(seq 1 "$3"); do
		answers 127.0.0.1 "$2" && return 0
		sleep 1
	done
	log "$1 did not come up on 127.0.0.1:$2"
	return 1
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else
		log "need root to run: $*"
		return 1
	fi
}

apt_updated=
apt_install() {
	if [ -z "$apt_updated" ]; then
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		apt_updated=1
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# apt_install_quiet installs packages whose own service must not start (the tests run
# theirs): Debian's policy-rc.d mechanism tells the package scripts not to start it.
apt_install_quiet() {
	local policy=/usr/sbin/policy-rc.d
	if [ -e "$policy" ]; then
		apt_install "$@"
		return
	fi
	as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod +x $policy"
	local status=0
	apt_install "$@" || status=$?
	as_root rm -f "$policy"
	return $status
}

ensure_postgres() {
	if answers 127.0.0.1 $PG_PORT; then
		log "PostgreSQL answers on 127.0.0.1:$PG_PORT"
		return 0
	fi
	if ! command -v pg_ctlcluster >/dev/null 2>&1; then
		log "installing PostgreSQL"
		apt_install postgresql
	fi
	local version
	version=$(ls /etc/postgresql | sort -V | tail -n 1)
	if [ -z "$version" ]; then
		log "no PostgreSQL cluster found under /etc/postgresql"
		return 1
	fi
	if [ ! -d "/etc/postgresql/$version/main" ]; then
		as_root pg_createcluster "$version" main
	fi
	log "starting PostgreSQL $version"
	as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
	wait_for PostgreSQL $PG_PORT 30
	# A fresh cluster asks TCP clients for a password: give the tests' role the one they use.
	# (Where the server trusts local connections, the password is simply ignored.)
	if command -v runuser >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- psql -q -c "ALTER ROLE postgres PASSWORD 'postgres'" >/dev/null
	fi
}

ensure_redis() {
	if answers 127.0.0.1 $REDIS_PORT; then
		log "Redis answers on 127.0.0.1:$REDIS_PORT"
		return 0
	fi
	if ! command -v redis-server >/dev/null 2>&1; then
		log "installing Redis"
		apt_install redis-server
	fi
	log "starting Redis"
	mkdir -p /tmp/telemetry-redis
	redis-server --daemonize yes --bind 127.0.0.1 --port $REDIS_PORT --save "" --appendonly no \
		--dir /tmp/telemetry-redis --logfile /tmp/telemetry-redis/redis.log
	wait_for Redis $REDIS_PORT 15
}

ensure_prometheus() {
	if command -v prometheus >/dev/null 2>&1; then
		log "Prometheus: $(command -v prometheus)"
		return 0
	fi
	log "installing Prometheus"
	apt_install_quiet prometheus
}

ensure_victoria_metrics() {
	if command -v victoria-metrics >/dev/null 2>&1; then
		log "VictoriaMetrics: $(command -v victoria-metrics)"
		return 0
	fi
	log "installing VictoriaMetrics"
	apt_install_quiet victoria-metrics
}

ensure_chromium() {
	if command -v chromium >/dev/null 2>&1; then
		log "Chromium: $(command -v chromium)"
		return 0
	fi
	log "installing Chromium"
	apt_install chromium fonts-dejavu-core
}

ensure_postgres
ensure_redis
ensure_prometheus
ensure_victoria_metrics
ensure_chromium
