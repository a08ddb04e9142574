# HubKit bootstrap. Each target installs what it needs (cached under $(HUBKIT_CACHE)) and hands over to nox.
HUBKIT_CACHE ?= $(HOME)/.cache/hubkit
BOOT := $(HUBKIT_CACHE)/bootstrap
NOX := $(BOOT)/bin/nox
export HUBKIT_CACHE
# uv must use this machine's Python and never download one.
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := python3
NAME ?=
ARGS ?=

.PHONY: dev test test-latest test-z2jh lint bench chart platform clean

$(NOX): noxfile.py
	python3 -m venv $(BOOT)
	$(BOOT)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9 nox==2026.10.20
	@touch $(NOX)

dev: $(NOX)   ## run a local hub on the hermetic Kubernetes platform at http://127.0.0.1:8000
	$(NOX) -s dev -- $(ARGS)

test: $(NOX)  ## build/install everything needed, then run the whole test suite (hub tests on two sets)
	$(NOX) -s platform
	$(MAKE) --no-print-directory -j2 test-latest test-z2jh

# The two Python sets run side by side (most of a test's time is spent waiting for processes it
# started); the platform's tools are built once first. z2jh's lane prints its log when it ends.
test-latest: $(NOX)
	HUBKIT_PLATFORM_READY=1 $(NOX) -s test -- $(ARGS)

test-z2jh: $(NOX)
	@mkdir -p .nox
	@HUBKIT_PLATFORM_READY=1 $(NOX) -s test_z2jh -- $(ARGS) > .nox/test_z2jh.log 2>&1; rc=$$?; \
	  echo "--- z2jh 4.4.0 hub set (.nox/test_z2jh.log) ---"; cat .nox/test_z2jh.log; exit $$rc

lint: $(NOX)  ## ruff + mypy (strict on packages/*/src)
	$(NOX) -s lint

bench: $(NOX) ## all benchmarks in bench/, or one with NAME=<name>
	$(NOX) -s bench -- $(NAME)

chart: $(NOX) ## the Helm chart: helm lint/template of every example, dry-run apply to the hermetic API server
	$(NOX) -s chart -- $(ARGS)

platform: $(NOX) ## only build/install the platform's tools (Go binaries, Debian and npm packages)
	$(NOX) -s platform

clean:
	rm -rf .nox .venv
