#!/usr/bin/env bash
# Measures PUBLISH throughput of redis-server, a one-node ordo and a
# three-node ordo cluster in the same run with redis-benchmark: 50 clients,
# -P 1 and -P 16, one subscriber on the channel, RUNS repetitions each,
# median reported. The cluster is benchmarked through node 1, a follower
# (every publish is forwarded to the leader, node 3, and committed on a
# majority). Everything on 127.0.0.1.
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
C1=7511 C2=7512 C3=7513
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >/dev/null &
pids+=($!)
"$ORDO" node --port "$ORDO_PORT" --data-dir "$tmp/ordo" --log-level warn &
pids+=($!)
peers="1:127.0.0.1:$C1,2:127.0.0.1:$C2,3:127.0.0.1:$C3"
for i in 1 2 3; do
	port_var="C$i"
	"$ORDO" node --id "$i" --port "${!port_var}" --peers "$peers" --data-dir "$tmp/c$i" --log-level warn &
	pids+=($!)
done
for port in "$REDIS_PORT" "$ORDO_PORT" "$C1" "$C2" "$C3"; do
	for _ in $(seq 100); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.1; done
done

for _ in $(seq 100); do redis-cli -p "$C3" STATUS 2>/dev/null | grep -qx leader && break; sleep 0.1; done
# One subscriber per server, draining to /dev/null.
for port in "$REDIS_PORT" "$ORDO_PORT" "$C1"; do
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
printf "%-6s %-5s %13s %13s %7s %15s %7s\n" pipe runs redis-server ordo-1node ratio ordo-3nodes ratio
for P in 1 16; do
	r=(); o=(); c=()
	for _ in $(seq "$RUNS"); do
		r+=("$(rps "$REDIS_PORT" "$P")")
		o+=("$(rps "$ORDO_PORT" "$P")")
		c+=("$(rps "$C1" "$P")")
	done
	rm=$(printf "%s\n" "${r[@]}" | median)
	om=$(printf "%s\n" "${o[@]}" | median)
	cm=$(printf "%s\n" "${c[@]}" | median)
	printf "%-6s %-5s %13s %13s %7.2f %15s %7.2f\n" "-P $P" "$RUNS" "$rm" "$om" \
		"$(awk -v a="$om" -v b="$rm" 'BEGIN {print a / b}')" "$cm" "$(awk -v a="$cm" -v b="$rm" 'BEGIN {print a / b}')"
	echo "  redis: ${r[*]} | ordo 1 node: ${o[*]} | ordo 3 nodes: ${c[*]}"
done
