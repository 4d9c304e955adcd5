# ordo — see README.md.
GO ?= go
SIM_SCHEDULES ?= 200000

.PHONY: build run test test-short sim bench deps vet cluster clean

build:
	$(GO) build -o bin/ordo ./cmd/ordo

run: build
	./bin/ordo node

# The whole suite: unit, simulation, differential (against a real
# redis-server), client-library and real-process tests.
test: deps build
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...
	# The race detector makes the simulation 10x slower, so under -race it
	# runs a tenth of the schedules; run the full 10,000+ without it too.
	$(GO) test -count=1 -timeout 20m ./consensus

test-short:
	$(GO) test -short ./...

# A longer seeded simulation sweep of the consensus core.
sim:
	$(GO) test ./consensus -run TestSim -count=1 -timeout 60m -sim.schedules=$(SIM_SCHEDULES)

# Installs what the tests need on a fresh Debian machine, if missing:
# redis-server (the reference the differential tests compare against),
# redis-tools (redis-cli, redis-benchmark) and other client libraries.
deps:
	@./.ci/deps.sh

bench: build
	./bench/compare.sh

# A local three-node cluster (configs/node{1,2,3}_local.yml), foreground.
cluster: build
	./deploy/local-cluster.sh

clean:
	rm -rf bin data
