# ordo — see README.md.
GO ?= go
SIM_SCHEDULES ?= 200000

.PHONY: build run test test-short sim fuzz fuzz-brief bench bench-quick bench-deps bench-patterns bench-attack bench-xrange bench-restart scale-test deps vet cluster image compose compose-down clean

build:
	# -buildvcs=auto: `ordo version` names the commit (GOFLAGS may turn stamping off)
	$(GO) build -buildvcs=auto -o bin/ordo ./cmd/ordo

run: build
	./bin/ordo node

# The whole suite: unit, simulation, differential (against a real
# redis-server), client-library and real-process tests.
test: deps build
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...
	# The race detector makes everything 5-10x slower, so under -race the
	# simulations run a fraction of their schedules and the catch-up test a
	# tenth of its backlog; run them in full without -race too: 10,000+
	# schedules of the core, 10,000 of the real runtime (replicas, store,
	# core) over a crashable disk, and a follower catching up a million
	# messages.
	$(GO) test -count=1 -timeout 20m ./consensus
	$(GO) test -count=1 -timeout 20m ./broker/replica -sim.schedules=10000
	$(GO) test -count=1 -timeout 10m -run TestFollowerCatchesUpMillionWithoutElection ./cmd/ordo
	# Demo 7 at full size: 15 real nodes grown by joins, leader kills,
	# restarts, a leave and a join (the -race run above does 5).
	./bin/ordo scale-test --peers 15
	# Each fuzz target briefly (the plain run above replays their corpora).
	$(MAKE) fuzz-brief

# The fuzz targets (Go native fuzzing): the RESP front end (request
# scanner and a live node) and WAL recovery. A crash is written to the
# package's testdata/fuzz/<Target>/: fix it and commit the file, which
# every `go test` then replays.
FUZZ_TARGETS = ./broker:FuzzRequestScanner ./broker:FuzzRESPServer ./wal:FuzzRecoverSegment
FUZZTIME ?= 5m

fuzz:
	@for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} for $(FUZZTIME)"; \
		$(GO) test -run XXX -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) $${t%%:*} || exit 1; \
	done

fuzz-brief:
	$(MAKE) fuzz FUZZTIME=10s

test-short:
	$(GO) test -short ./...

# A longer seeded simulation sweep of the consensus core.
sim:
	$(GO) test ./consensus -run TestSim -count=1 -timeout 60m -sim.schedules=$(SIM_SCHEDULES)
	$(GO) test ./broker/replica -run TestSim -count=1 -timeout 60m -sim.schedules=$(SIM_SCHEDULES)

# Installs what the tests need on a fresh Debian machine, if missing:
# redis-server (the reference the differential tests compare against),
# redis-tools (redis-cli, redis-benchmark) and other client libraries.
deps:
	@./.ci/deps.sh

# Issue 10's performance table (bench/suite): every row measured side by
# side with redis-server and, if installed (make bench-deps), NATS
# JetStream; medians of 3 interleaved runs; writes data/bench/suite.{csv,
# json,md,png,log}. About 20-40 minutes on a 2-core machine. Pick rows
# and sizes with BENCH_FLAGS, e.g. BENCH_FLAGS="-rows fanout,latency" or
# BENCH_FLAGS="-restart 2000000" (go run ./bench/suite -h lists them).
BENCH_FLAGS ?=
BENCHDEPS = $(CURDIR)/bin/benchdeps
NATS_SERVER_VERSION ?= v2.15.2

bench: build
	$(GO) build -o bin/bench-xrange ./bench/xrange
	$(GO) run ./bench/suite -ordo bin/ordo -xrange bin/bench-xrange $(BENCH_FLAGS)

# The same with small sizes and one run: checks the suite works (about a minute).
bench-quick:
	$(MAKE) bench BENCH_FLAGS="-quick $(BENCH_FLAGS)"

# nats-server (the JetStream reference of `make bench`) into bin/benchdeps,
# where the suite finds it; the suite publishes with nats.go itself, so
# the nats CLI is not needed.
bench-deps:
	GOBIN=$(BENCHDEPS) $(GO) install github.com/nats-io/nats-server/v2@$(NATS_SERVER_VERSION)

# PUBLISH throughput against redis-server with 0, 1k, 10k and 100k
# pattern subscriptions (bench/patterns.sh; about 3 minutes).
bench-patterns: build
	./bench/patterns.sh

# Hostile request streams (millions of empty arguments, absurd multibulk
# counts, huge declared bulks) against a fresh ordo node and redis-server:
# peak RSS, PING p99 of an unrelated client, CPU; medians of 3 runs.
bench-attack: build
	$(GO) run ./bench/attack -ordo bin/ordo -runs 3 -duration 3s

# The demo guide's demo 7: 15 local nodes through joins, concurrent
# publishing, leader kills, restarts, a leave and a join, every history
# checked (about 10s; exits non-zero on any violation).
scale-test: build
	./bin/ordo scale-test --peers 15

# A local three-node cluster (configs/node{1,2,3}_local.yml), foreground.
cluster: build
	./deploy/local-cluster.sh

# The Docker image (deploy/Dockerfile): the static binary, built here with
# CGO_ENABLED=0 into bin/docker/, on an empty base (FROM scratch).
IMAGE ?= ordo:latest
COMPOSE ?= docker-compose -f deploy/docker-compose.yml

image:
	GO="$(GO)" ./deploy/build-image.sh $(IMAGE)

# The three-node cluster in Docker (README.md, "Docker Compose"): containers
# chat_node1..3 on host ports 5001-5003, one data volume each.
compose: image
	ORDO_IMAGE=$(IMAGE) $(COMPOSE) up -d

# Removes the containers and keeps the data volumes (`$(COMPOSE) down -v`
# drops them too).
compose-down:
	$(COMPOSE) down

clean:
	rm -rf bin data

# Big history replies (issue 10): peak RSS and an unrelated client's PING
# latency while 1 and 3 clients read `XRANGE chat - +` over 1M entries,
# ordo against redis-server (a few minutes).
bench-xrange: build
	$(GO) run ./bench/xrange -ordo bin/ordo

# Restart with a long log (issue 10): time until PING and until STATUS and
# XRANGE answer, and RSS, after filling a node with 1M and 10M messages
# (the filled data directories are kept in $TMPDIR/bench-restart).
bench-restart: build
	$(GO) run ./bench/restart -ordo bin/ordo -messages 1000000,10000000
