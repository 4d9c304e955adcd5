#!/usr/bin/env bash
# Measures PUBLISH throughput of ordo and of redis-server in the same run
# with redis-benchmark: 50 clients, -P 1 and -P 16, one subscriber on the
# channel, RUNS repetitions each, median reported. Everything on 127.0.0.1.
#
#   bench/compare.sh            (after `make build`)
#   RUNS=5 N=200000 bench/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
N=${N:-200000}
ORDO=${ORDO:-./bin/ordo}
ORDO_PORT=${ORDO_PORT:-7501}
REDIS_PORT=${REDIS_PORT:-7502}
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >/dev/null &
pids+=($!)
"$ORDO" node --port "$ORDO_PORT" --data-dir "$tmp/ordo" --log-level warn &
pids+=($!)
for port in "$REDIS_PORT" "$ORDO_PORT"; do
	for _ in $(seq 100); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.1; done
done

# One subscriber per server, draining to /dev/null.
for port in "$REDIS_PORT" "$ORDO_PORT"; do
	redis-cli -p "$port" SUBSCRIBE bench >/dev/null &
	pids+=($!)
done
sleep 0.5

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
PAYLOAD=$(printf 'x%.0s' $(seq 100))
rps() { # port pipeline
	redis-benchmark -p "$1" -c 50 -P "$2" -n "$N" -q PUBLISH bench "$PAYLOAD" 2>/dev/null |
		tr '\r' '\n' | awk -F': ' '/requests per second/ {split($2, a, " "); v = a[1]} END {print v}'
}
printf "%-6s %-10s %14s %14s %8s\n" pipe runs redis-server ordo ratio
for P in 1 16; do
	r=(); o=()
	for _ in $(seq "$RUNS"); do
		r+=("$(rps "$REDIS_PORT" "$P")")
		o+=("$(rps "$ORDO_PORT" "$P")")
	done
	rm=$(printf "%s\n" "${r[@]}" | median)
	om=$(printf "%s\n" "${o[@]}" | median)
	printf "%-6s %-10s %14s %14s %8.2f\n" "-P $P" "$RUNS" "$rm" "$om" "$(awk -v a="$om" -v b="$rm" 'BEGIN {print a / b}')"
	echo "  redis runs: ${r[*]}   ordo runs: ${o[*]}"
done
