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

.PHONY: dev test lint bench chart images platform clean

$(NOX): noxfile.py
	python3 -m venv $(BOOT)
	$(BOOT)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9 nox==2026.10.20
	@touch $(NOX)

dev: $(NOX)   ## run a local hub on the hermetic Kubernetes platform at http://127.0.0.1:8000
	$(NOX) -s dev -- $(ARGS)

test: $(NOX)  ## build/install everything needed, then run the whole test suite (hub tests on two sets)
	$(NOX) -s test test_z2jh -- $(ARGS)

lint: $(NOX)  ## ruff + mypy (strict on packages/*/src)
	$(NOX) -s lint

bench: $(NOX) ## all benchmarks in bench/, or one with NAME=<name>
	$(NOX) -s bench -- $(NAME)

chart: $(NOX) ## the Helm chart: helm lint/template of every example, dry-run apply to the hermetic API server
	$(NOX) -s chart -- $(ARGS)

images: $(NOX) ## build every HubKit image with buildah (localhost/hubkit-local/<name>:local), cached by input hash
	$(NOX) -s images

platform: $(NOX) ## only build/install the platform's tools (Go binaries, Debian and npm packages)
	$(NOX) -s platform

clean:
	rm -rf .nox .venv
