# perprisk — the two commands: `make demo` and `make test`. Both create .venv on first use.
# The interpreter .venv is made from: the first of these that is Python >= 3.11 with venv. The distribution's own
# build comes first: Debian's is built with profile-guided optimization and LTO, and ran the 1,000,000-account
# stress benchmark ~12 % faster on this machine than pyenv's plain build (3-5 % for `make demo`; see
# docs/performance.md).
# `make PYTHON=/path/to/python3 ...` chooses another; an existing .venv is kept as it is.
PYTHON ?= $(shell for p in /usr/bin/python3 python3; do \
	$$p -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; \
	done)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: no Python >= 3.11 with venv found (give one: make PYTHON=...)" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# The main job: the default stress scenario — the real 2025-10-10/11 BTCUSDT crash (both days, 2,880 one-minute
# candles) through 100,000 leveraged accounts — writing reports/stress-summary.json and reports/stress-report.html.
DEMO_ARGS ?= --json reports/stress-summary.json

demo: $(STAMP)
	$(BIN)/perprisk stress $(DEMO_ARGS)

test: $(STAMP)
	bash scripts/test-services.sh
	$(BIN)/python -m pytest -n 2 tests

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) reports .pytest_cache .hypothesis
