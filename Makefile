# Two commands do all the set-up: `make repro` runs the pipeline, `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.installed
# Stages call `python -m stages.<name>`: the virtual environment's python must come first.
RUN    := PATH="$(BIN):$$PATH"

.PHONY: setup dataset repro test test-fast benchmark sweep

setup: $(STAMP) dataset

$(STAMP): requirements.txt requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $@

# Fashion-MNIST from Debian's package where apt exists; elsewhere the fetch stage downloads it.
dataset:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null; then \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq dataset-fashion-mnist; \
	fi

repro: setup
	$(RUN) $(BIN)/dvc repro
	@echo "Report: report/report.html (numbers: $(VENV)/bin/dvc metrics show)"

test: setup
	$(RUN) $(BIN)/python -m pytest

# Unit tests only, without the end-to-end dvc repro.
test-fast: setup
	$(RUN) $(BIN)/python -m pytest -m "not slow"

# Training throughput: the project's path against plain model.fit, cached features against end to end.
benchmark: setup
	$(RUN) $(BIN)/python -m benchmarks.throughput

# A grid of DVC experiments over dataset size and epochs, collected into sweep/.
EXAMPLES ?= 10,100,1000,all
EPOCHS   ?= 3,10,30
sweep: setup
	$(RUN) $(BIN)/python -m tlstudy.sweep run --examples $(EXAMPLES) --epochs $(EPOCHS)
