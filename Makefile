# mcpd — build, run and test. `make run` and `make test` install what is missing first.
SHELL := /bin/bash
VENV ?= .venv
VENV_MCP1 ?= .venv-mcp1
PY := $(VENV)/bin/python
CONFIG ?= examples/mcpd.yaml
APT_PACKAGES := libuv1-dev libyaml-dev libhttp-parser-dev pkg-config valgrind
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
BENCH_TOOLS := Benchmarks/.build-bench/loadgen Benchmarks/.build-bench/relay Benchmarks/.build-bench/echo_backend \
	Benchmarks/.build-bench/coldstart Benchmarks/.build-bench/malloc_count.so

.PHONY: all deps apt-deps py-deps build release run test unit integration integration-release bench bench-tools clean

all: build

## deps: Debian packages (libuv, libyaml, http-parser) and a Python venv with the MCP SDK
deps: apt-deps py-deps

apt-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	python3 -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

py-deps: $(VENV)/.installed $(VENV_MCP1)/.installed

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "make deps: installing Python packages into $(VENV)"
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

## a second venv with the MCP SDK from before the stateless era, for handshake-only test backends
$(VENV_MCP1)/.installed: requirements-mcp1.txt
	@test -x $(VENV_MCP1)/bin/python || python3 -m venv $(VENV_MCP1)
	@echo "make deps: installing Python packages into $(VENV_MCP1)"
	@$(VENV_MCP1)/bin/python -m pip install -q --disable-pip-version-check -r requirements-mcp1.txt
	@touch $@

## build: debug build of mcpd (.build/debug/mcpd); its output goes to stderr, so that the
## stdout of `make run` carries protocol messages only
build: apt-deps
	swift build >&2

## release: optimised, statically linked Swift runtime (.build/release/mcpd). Built from clean:
## an incremental release build can keep code inlined across modules from before a change.
release: apt-deps
	rm -rf .build/*/release
	swift build -c release --static-swift-stdlib

## run: mcpd on the example config, serving one MCP client on stdin/stdout
run: deps build
	.build/debug/mcpd stdio --config $(CONFIG)

## test: Swift unit tests, then the integration suite against the debug binary and against the
## release binary (built with different flags: no exclusivity checks, non-atomic refcounting)
test: deps build unit integration integration-release

unit: apt-deps
	swift test

integration: deps build
	MCPD_BIN=$(CURDIR)/.build/debug/mcpd $(PY) -m pytest Tests/Integration -q

integration-release: deps release
	MCPD_BIN=$(CURDIR)/.build/release/mcpd $(PY) -m pytest Tests/Integration -q

## bench: release build and the benchmark table (Benchmarks/README.md)
bench: deps release bench-tools
	python3 Benchmarks/run.py --mcpd .build/release/mcpd

bench-tools: $(BENCH_TOOLS)

Benchmarks/.build-bench/%: Benchmarks/%.c
	@mkdir -p Benchmarks/.build-bench
	gcc -O2 -Wall -Wextra -std=gnu11 -o $@ $<

Benchmarks/.build-bench/malloc_count.so: Benchmarks/malloc_count.c
	@mkdir -p Benchmarks/.build-bench
	gcc -shared -fPIC -O2 -Wall -Wextra -std=gnu11 -o $@ $< -ldl

clean:
	rm -rf .build Benchmarks/.build-bench
