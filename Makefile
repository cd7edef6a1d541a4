# faas — build, run and test.
#   make            build build/bin/server and build/bin/worker (release)
#   make run        toolchains + build + ./build/bin/server RR
#   make test       toolchains + build + every test (unit and end to end)
#   make lint       rustfmt check + clippy -D warnings
#   make toolchains install compilers/runtimes (Debian 12, as root; idempotent)
#   make bench      benchmarks against baselines (and a cluster section); writes BENCHMARKS.md
#   make soak       100k calls at concurrency 64 with two workers killed
#   make cluster    SeaweedFS + 3 replicas + nginx on :8080 (Ctrl-C stops all)
#   make image      the container image (Containerfile), with podman or docker
#   make cluster-podman  the image on deploy/kubernetes with `podman kube play`
SHELL := /bin/bash
CARGO ?= cargo
# Tests, binaries and clippy all use the release profile, so the heavy
# dependencies (Wasmer, cranelift) are compiled once.
CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR
BIN_DIR := build/bin
RUNTIMES_DIR := build/runtimes

.PHONY: all build run test lint toolchains bench soak cluster image cluster-podman clean

all: build

# Every target (tests too) in the one cargo call that builds the binaries:
# dev-dependencies then turn on the same features of shared crates (chrono,
# time, syn...) for the binaries as for the tests, so Wasmer, cranelift and
# wasmer-wasix are compiled once, whether `make run` or `make test` comes
# first. Building the binaries alone and then the tests compiled them twice
# (7 more minutes on a cold machine); the test targets cost a minute or two.
BUILD_TARGETS ?= --all-targets

build:
	$(CARGO) build --release --locked --workspace $(BUILD_TARGETS)
	@mkdir -p $(BIN_DIR)
	install -m 755 $(CARGO_TARGET_DIR)/release/faas-server $(BIN_DIR)/server
	install -m 755 $(CARGO_TARGET_DIR)/release/worker $(BIN_DIR)/worker
	install -m 755 $(CARGO_TARGET_DIR)/release/faas-http-floor $(BIN_DIR)/faas-http-floor
	install -m 755 $(CARGO_TARGET_DIR)/release/faas $(BIN_DIR)/faas
	@mkdir -p $(RUNTIMES_DIR)
	@# Compile the interpreters once per machine and Wasmer version.
	@if [ -f $(RUNTIMES_DIR)/qjs.wasm ] || [ -f $(RUNTIMES_DIR)/python-snapshot.wasm ]; then \
	  $(BIN_DIR)/worker --runtimes-dir $(RUNTIMES_DIR) prepare-runtimes; fi

toolchains:
	RUNTIMES_DIR=$(RUNTIMES_DIR) ./scripts/install-toolchains.sh

run: toolchains build
	./build/bin/server RR

test: toolchains build
	FAAS_BIN_DIR=$(CURDIR)/$(BIN_DIR) $(CARGO) test --release --locked --workspace

# Prints a table (faas vs baselines, with ratios) and writes BENCHMARKS.md.
bench: toolchains build
	python3 scripts/bench.py

# SOAK_CALLS, SOAK_CONCURRENCY, SOAK_KILLS (seconds) change the run.
soak: toolchains build
	python3 scripts/soak.py

# Several replicas on this machine, as on Kubernetes: see "Running on
# several machines" in the README. CLUSTER_* variables change it.
cluster: toolchains build
	./scripts/cluster.sh

# IMAGE (localhost/faas:latest) and BASE (localhost/debian:12) change it.
image: build
	./scripts/image.sh

cluster-podman:
	./scripts/cluster-podman.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --locked --workspace --all-targets -- -D warnings

clean:
	rm -rf build
	$(CARGO) clean
