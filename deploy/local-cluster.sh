#!/usr/bin/env bash
# Starts the three-node local cluster of configs/node{1,2,3}_local.yml in
# the foreground (ports 5001-5003, data in data/node1..3); Ctrl-C stops it.
#
#   make cluster          (or: deploy/local-cluster.sh)
#   redis-cli -p 5001 SUBSCRIBE chat
#   redis-cli -p 5002 PUBLISH chat hi
#   redis-cli -p 5003 STATUS
set -euo pipefail
cd "$(dirname "$0")/.."
ORDO=${ORDO:-./bin/ordo}
[ -x "$ORDO" ] || go build -o bin/ordo ./cmd/ordo
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
for i in 1 2 3; do
	"$ORDO" node --config "configs/node${i}_local.yml" &
	pids+=($!)
done
wait
