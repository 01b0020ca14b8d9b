# perprisk — the two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# The main job: the real 2025-10-10 BTCUSDT crash replayed through a leveraged population (summary + HTML report).
DEMO_ARGS ?= --accounts 20000 --start 2025-10-10T20:00Z --end 2025-10-11T00:00Z --json reports/stress-summary.json

demo: $(STAMP)
	$(BIN)/perprisk stress $(DEMO_ARGS)

test: $(STAMP)
	bash scripts/test-services.sh
	$(BIN)/python -m pytest -n 2 tests

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) reports .pytest_cache .hypothesis
