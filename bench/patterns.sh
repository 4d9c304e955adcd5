#!/usr/bin/env bash
# Measures PUBLISH throughput of redis-server and a one-node ordo while
# idle connections hold 0, 1,000, 10,000 and 100,000 pattern subscriptions
# user:<12-digit id>:* (20,000 per connection, as redis-cli PSUBSCRIBE).
# redis-benchmark publishes to user:<random id>:events with ids drawn from
# ten times as many as there are patterns, so one publish in ten matches
# one pattern (delivered to its idle connection) and the rest match none.
# 50 clients, -P 1 (at -P 16 Redis with 100k patterns finishes none of
# its first 800 requests within a run). Each run lasts DURATION seconds
# (redis-benchmark's running "overall" rate when it is stopped, so that
# Redis's slow runs stay bounded); redis and ordo runs alternate, RUNS of
# each, medians reported. ordo runs with fsync always unless FSYNC=never.
#
#   bench/patterns.sh            (after `make build`; `make bench-patterns`)
#   RUNS=5 DURATION=5 P=16 FSYNC=never COUNTS="0 1000" bench/patterns.sh
#   ORDO_CPUPROFILE=/tmp/cpu.pprof COUNTS=100000 RUNS=1 bench/patterns.sh
#       (ordo's CPU profile of the whole run: go tool pprof -top bin/ordo /tmp/cpu.pprof)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
P=${P:-1}
CLIENTS=${CLIENTS:-50}
FSYNC=${FSYNC:-always}
COUNTS=${COUNTS:-0 1000 10000 100000}
PER_CONN=20000
ORDO=${ORDO:-./bin/ordo}
ORDO_PORT=${ORDO_PORT:-7521}
REDIS_PORT=${REDIS_PORT:-7522}
tmp=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" >/dev/null &
pids+=($!)
"$ORDO" node --port "$ORDO_PORT" --data-dir "$tmp/ordo" --fsync "$FSYNC" --log-level warn &
pids+=($!)
for port in "$REDIS_PORT" "$ORDO_PORT"; do
	for _ in $(seq 100); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.1; done
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
PAYLOAD=$(printf 'x%.0s' $(seq 100))
rps() { # port ids
	# Progress lines end in \r: the last "overall" rate is the run's.
	timeout -s INT "$DURATION" redis-benchmark -p "$1" -c "$CLIENTS" -P "$P" -n 1000000000 -r "$2" -q \
		PUBLISH 'user:__rand_int__:events' "$PAYLOAD" 2>/dev/null |
		tr '\r' '\n' | sed -n 's/.*rps=[0-9.]* (overall: \([0-9.]*\)).*/\1/p' | tail -1 || true
	# The stopped benchmark leaves up to CLIENTS*P publishes queued (at
	# 100k patterns Redis takes about a second for them): the PING's reply
	# comes once they are done, so the next run starts on an idle server.
	redis-cli -p "$1" PING >/dev/null
}
subscribe() { # port from to: PSUBSCRIBE user:<from..to-1>:* on idle connections
	local from=$2
	while [ "$from" -lt "$3" ]; do
		local to=$((from + PER_CONN < $3 ? from + PER_CONN : $3))
		# shellcheck disable=SC2046
		redis-cli -p "$1" PSUBSCRIBE $(seq -f 'user:%012.0f:*' "$from" $((to - 1))) >/dev/null 2>&1 &
		pids+=($!)
		from=$to
	done
}
wait_numpat() { # port count
	for _ in $(seq 600); do
		[ "$(redis-cli -p "$1" PUBSUB NUMPAT)" = "$2" ] && return
		sleep 0.1
	done
	echo "PUBSUB NUMPAT on port $1 never reached $2" >&2
	exit 1
}

echo "PUBLISH user:<id>:events, $CLIENTS clients, -P $P, ordo fsync $FSYNC, ${DURATION}s runs, median of $RUNS"
printf "%-9s %13s %13s %7s\n" patterns redis-server ordo ratio
have=0
for n in $COUNTS; do
	for port in "$REDIS_PORT" "$ORDO_PORT"; do subscribe "$port" "$have" "$n"; done
	for port in "$REDIS_PORT" "$ORDO_PORT"; do wait_numpat "$port" "$n"; done
	have=$n
	ids=$((n > 0 ? 10 * n : 10000))
	r=(); o=()
	for _ in $(seq "$RUNS"); do
		r+=("$(rps "$REDIS_PORT" "$ids")")
		o+=("$(rps "$ORDO_PORT" "$ids")")
	done
	rm=$(printf "%s\n" "${r[@]}" | median)
	om=$(printf "%s\n" "${o[@]}" | median)
	printf "%-9s %13.0f %13.0f %7.2f\n" "$n" "$rm" "$om" "$(awk -v a="$om" -v b="$rm" 'BEGIN {print a / b}')"
	echo "  runs: redis ${r[*]} | ordo ${o[*]}"
done
