#!/usr/bin/env bash
# Two kind clusters, as a fleet spread over sites runs the pipeline: an edge cluster near the
# GPUs running streamers only, and a central one running PostgreSQL, Redis, the collectors and
# the API. The edge streamers publish to the central Redis, exposed on a NodePort of the
# central cluster's nodes (both clusters' nodes share Docker's "kind" network).
#
#   scripts/kind-env.sh up            create both clusters, build and load the image, install both releases
#   scripts/kind-env.sh status        pods, services and autoscalers of both
#   scripts/kind-env.sh logs [edge|central]   follow one cluster's pipeline logs (default central)
#   scripts/kind-env.sh cleanup       delete both clusters
#   scripts/kind-env.sh config edge|central   print a cluster's kind config
#   scripts/kind-env.sh render        print both releases' manifests (helm template), as up installs them
#
# Settings (environment): KIND_EDGE_NODES (workers of the edge cluster, 1), KIND_CENTRAL_NODES
# (2), STREAMER_INSTANCES (2), COLLECTOR_INSTANCES (2), API_GW_INSTANCES (2), IMAGE
# (telemetry-pipeline:0.1.0), REDIS_NODE_PORT (30379), HELM (helm).
set -euo pipefail
cd "$(dirname "$0")/.."

KIND_EDGE_NODES=${KIND_EDGE_NODES:-1}
KIND_CENTRAL_NODES=${KIND_CENTRAL_NODES:-2}
STREAMER_INSTANCES=${STREAMER_INSTANCES:-2}
COLLECTOR_INSTANCES=${COLLECTOR_INSTANCES:-2}
API_GW_INSTANCES=${API_GW_INSTANCES:-2}
IMAGE=${IMAGE:-telemetry-pipeline:0.1.0}
REDIS_NODE_PORT=${REDIS_NODE_PORT:-30379}
HELM=${HELM:-helm}
EDGE=telemetry-edge
CENTRAL=telemetry-central
CHART=deploy/helm/telemetry-pipeline
RELEASE=telemetry-pipeline
# Docker's networks, where the edge's connections to the central NodePort come from.
DOCKER_NETWORKS=172.16.0.0/12

log() { printf 'kind-env: %s\n' "$*" >&2; }

count() { # name value
	case $2 in
	'' | *[!0-9]*) log "$1 must be a number, got '$2'"; exit 2 ;;
	esac
}
for v in KIND_EDGE_NODES KIND_CENTRAL_NODES STREAMER_INSTANCES COLLECTOR_INSTANCES API_GW_INSTANCES REDIS_NODE_PORT; do
	count "$v" "${!v}"
done

config() { # edge|central
	local name workers
	case $1 in
	edge) name=$EDGE workers=$KIND_EDGE_NODES ;;
	central) name=$CENTRAL workers=$KIND_CENTRAL_NODES ;;
	*) log "no cluster '$1': edge or central"; exit 2 ;;
	esac
	printf '# kind cluster %s: scripts/kind-env.sh config %s\n' "$name" "$1"
	printf 'kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: %s\nnodes:\n  - role: control-plane\n' "$name"
	for _ in $(seq 1 "$workers"); do
		printf '  - role: worker\n'
	done
}

central_args() {
	printf '%s\n' -f "$CHART/values-same-cluster.yaml" \
		--set streamer.enabled=false \
		--set "collector.replicas=$COLLECTOR_INSTANCES" --set "api.replicas=$API_GW_INSTANCES" \
		--set "api.autoscaling.minReplicas=$API_GW_INSTANCES" --set "api.autoscaling.maxReplicas=$((API_GW_INSTANCES * 3))" \
		--set redisServer.service.type=NodePort --set "redisServer.service.nodePort=$REDIS_NODE_PORT" \
		--set "redisServer.service.allowFrom={$DOCKER_NETWORKS}"
}

edge_args() {
	printf '%s\n' -f "$CHART/values-edge-cluster.yaml" --set "streamer.replicas=$STREAMER_INSTANCES"
}

image_args() {
	printf '%s\n' --set "image.repository=${IMAGE%:*}" --set "image.tag=${IMAGE##*:}"
}

render() {
	local args
	echo "# cluster: central"
	mapfile -t args < <(central_args; image_args)
	"$HELM" template "$RELEASE" "$CHART" "${args[@]}"
	echo "# cluster: edge"
	mapfile -t args < <(edge_args; image_args)
	"$HELM" template "$RELEASE" "$CHART" "${args[@]}"
}

need() {
	for tool in "$@"; do
		command -v "$tool" >/dev/null || { log "needs $tool"; exit 1; }
	done
}

up() {
	need docker kind kubectl "$HELM"
	for c in central edge; do
		local name=$CENTRAL
		[ "$c" = edge ] && name=$EDGE
		if kind get clusters | grep -qx "$name"; then
			log "cluster $name exists"
		else
			config "$c" | kind create cluster --config -
		fi
	done
	docker build -f deploy/Dockerfile -t "$IMAGE" .
	kind load docker-image "$IMAGE" --name "$CENTRAL"
	kind load docker-image "$IMAGE" --name "$EDGE"

	local args
	mapfile -t args < <(central_args; image_args)
	"$HELM" upgrade --install "$RELEASE" "$CHART" --kube-context "kind-$CENTRAL" "${args[@]}" --wait --timeout 10m
	local password host
	password=$(kubectl --context "kind-$CENTRAL" get secret "$RELEASE" -o jsonpath='{.data.REDIS_PASSWORD}' | base64 -d)
	host=$(docker inspect -f '{{with index .NetworkSettings.Networks "kind"}}{{.IPAddress}}{{end}}' "$CENTRAL-control-plane")
	kubectl --context "kind-$EDGE" create secret generic telemetry-redis \
		--from-literal=REDIS_URL="redis://:$password@$host:$REDIS_NODE_PORT/0" --dry-run=client -o yaml |
		kubectl --context "kind-$EDGE" apply -f -
	mapfile -t args < <(edge_args; image_args)
	"$HELM" upgrade --install "$RELEASE" "$CHART" --kube-context "kind-$EDGE" "${args[@]}" --wait --timeout 5m
	log "edge streamers publish to the central Redis at $host:$REDIS_NODE_PORT"
	log "the API: kubectl --context kind-$CENTRAL port-forward svc/$RELEASE-api 8080"
}

status() {
	need kubectl
	for name in $CENTRAL $EDGE; do
		echo "== $name"
		kubectl --context "kind-$name" get pods,svc,hpa,pdb -l "app.kubernetes.io/instance=$RELEASE"
	done
}

logs() { # edge|central
	need kubectl
	local name=$CENTRAL
	case ${1:-central} in
	central) ;;
	edge) name=$EDGE ;;
	*) log "no cluster '$1': edge or central"; exit 2 ;;
	esac
	kubectl --context "kind-$name" logs -f -l "app.kubernetes.io/instance=$RELEASE" --all-containers --max-log-requests 20 --prefix
}

cleanup() {
	need kind
	kind delete cluster --name "$EDGE"
	kind delete cluster --name "$CENTRAL"
}

case ${1:-} in
up | status | cleanup | render) "$1" ;;
logs) logs "${2:-central}" ;;
config) config "${2:-}" ;;
*) sed -n '2,18p' "$0" >&2; exit 2 ;;
esac
