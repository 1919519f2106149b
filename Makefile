# Two commands do all the set-up: `make repro` runs the pipeline, `make test` runs the tests.
# `make` alone lists every target. Nothing here waits for a person: apt runs only as root or with
# `sudo -n`, and a long sweep asks only where someone can answer (YES=1 skips the question).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
# Stages call `python -m stages.<name>`: the virtual environment's python must come first.
RUN    := PATH="$(BIN):$$PATH"
# Which TensorFlow the set-up installs, each from its lock: cpu (tensorflow-cpu) or cuda
# (tensorflow[and-cuda], Linux x86_64 with an NVIDIA GPU). To switch an existing .venv, remove it first.
# By default cuda where nvidia-smi lists a GPU, else cpu (tlstudy/accelerator.py); TF_BUILD=cpu forces it.
TF_BUILD ?= $(shell $(PYTHON) -m tlstudy.accelerator --build 2>/dev/null || echo cpu)
LOCK     := requirements-$(TF_BUILD).txt

.DEFAULT_GOAL := help
.PHONY: help setup dataset browser repro results test test-fast lint lock benchmark benchmark-study calibration sweep \
	pr-report push pull

help: ## list the targets (the default goal)
	@awk -F ':.*## ' '/^[a-z-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# DVC's plots page with vega, vega-lite and vega-embed inline (.dvc/config: plots.html_template).
TEMPLATE := .dvc/plots/offline.html

setup: $(STAMP) $(TEMPLATE) dataset ## the virtual environment from the lock, and the datasets where apt has them

$(TEMPLATE): $(STAMP) tlstudy/vega.py
	$(BIN)/python -m tlstudy.vega template $@

# Every package at the version and hashes of the lock (pip itself included), nothing resolved anew.
$(STAMP): $(LOCK) requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements-nodeps.txt
	touch $@

# The test and lint tools, locked at the runtime lock's versions.
$(DEV): $(STAMP) requirements-dev.txt
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.txt
	touch $@

# The locks, from the *.in files: exact versions and hashes of every package, for Python 3.11. The CPU
# and dev locks hold for every platform (markers), the CUDA lock for Linux x86_64, where its wheels are.
UV_COMPILE := $(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes --custom-compile-command "make lock"
lock: $(DEV) ## regenerate every requirements-*.txt from the *.in files (after editing one)
	$(UV_COMPILE) --universal requirements-cpu.in -o requirements-cpu.txt
	$(UV_COMPILE) --python-platform x86_64-manylinux_2_28 requirements-cuda.in -o requirements-cuda.txt
	$(UV_COMPILE) --universal -c requirements-cpu.txt requirements-dev.in -o requirements-dev.txt
	$(UV_COMPILE) --universal --no-deps requirements-nodeps.in -o requirements-nodeps.txt

# Fashion-MNIST from Debian's package where apt exists and we may use it; elsewhere (no apt, not root
# and no password-less sudo, or apt fails) the fetch stage downloads it from the official mirror,
# checked by MD5.
FASHION_MNIST_SYSTEM := /usr/share/datasets/fashion-mnist
dataset: ## Debian's Fashion-MNIST package, where apt may run without a password
	@$(call apt_install,$(FASHION_MNIST_SYSTEM),dataset-fashion-mnist,the fetch stage will download Fashion-MNIST)

# $(call apt_install,path that shows it is installed,package,what happens without it). As root, or
# with `sudo -n`, which fails at once where sudo would ask for a password: the set-up never waits.
apt_install = if [ ! -e $(1) ]; then \
	  if ! command -v apt-get >/dev/null; then echo "No apt-get here: $(3)."; \
	  else SUDO=; \
	    if [ "$$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi; \
	    if [ -n "$$SUDO" ] && ! sudo -n true 2>/dev/null; then \
	      echo "Not root, and no sudo without a password: $(3) (or first: sudo apt-get install $(2))."; \
	    else ($$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null && \
	          $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) </dev/null) \
	         || echo "apt-get failed: $(3)."; \
	    fi; \
	  fi; \
	fi

# First what will run and about how long it takes (tlstudy/plan.py), then the pipeline.
repro: setup ## run the pipeline (only what changed), then print where the report is
	@$(RUN) $(BIN)/python -m tlstudy.plan
	$(RUN) $(BIN)/dvc repro
	@echo "Report: report/report.html (numbers: $(VENV)/bin/dvc metrics show)"
	@echo "Verdicts per regime: make results"

# `dvc exp show` narrowed to the regimes' knobs and the verdicts, to fit 120 columns.
results: setup ## every regime's verdicts side by side (dvc exp show, narrowed)
	$(RUN) $(BIN)/python -m tlstudy.readme results

# The test suite also opens DVC's plots page in a real browser: Debian's chromium, where apt exists.
CHROMIUM := /usr/bin/chromium
browser: ## Debian's chromium for the browser test, where apt may run without a password
	@$(call apt_install,$(CHROMIUM),chromium,the browser test will be skipped)

# Two pytest-xdist workers, one test module each at a time (tests/conftest.py): most of the suite's time
# is single-threaded (imports, graph building, DVC), so two cores run two modules side by side.
TEST_WORKERS ?= 2

test: setup browser $(DEV) ## every test, the end-to-end dvc repro runs included (what CI runs on main)
	$(RUN) $(BIN)/python -m pytest -n $(TEST_WORKERS)

# Unit tests only, without the end-to-end dvc repro.
test-fast: setup $(DEV) ## the unit tests only, without the end-to-end runs (what CI runs on a pull request)
	$(RUN) $(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not slow"

# ruff with ruff.toml.
lint: $(DEV) ## ruff over the code and tests
	$(BIN)/ruff check .

# Training throughput: the project's path against plain model.fit, cached features against end to end.
benchmark: setup ## training throughput: the project's path against plain model.fit
	$(RUN) $(BIN)/python -m benchmarks.throughput

# One ResNet50 run of the default regime, stage by stage: wall time, peak memory, overhead ratio,
# runs per hour (after `make repro`, whose data, split and initial weights it reuses).
benchmark-study: setup ## one ResNet50 run of the default regime, stage by stage (after make repro)
	$(RUN) $(BIN)/python -m benchmarks.study

# The verdict's calibration: false verdicts under the null and power, by simulation (docs/calibration.md).
calibration: setup ## the verdict's false verdicts and power, by simulation
	$(RUN) $(BIN)/python -m benchmarks.calibration

# The pull-request comment: verdicts, `dvc metrics diff --md`, every plot as a PNG, in pr-report/.
BASE ?= main
HEAD ?= workspace
pr-report: setup ## the pull-request comment (BASE=main HEAD=workspace) in pr-report/
	$(RUN) $(BIN)/python -m tlstudy.review --base $(BASE) --head $(HEAD) --out pr-report

# A grid of DVC experiments over dataset size and epochs, collected into sweep/. It first prints the
# number of runs and their estimated time; past `--confirm-hours` (tlstudy/sweep.py) it asks to go on, at a
# terminal, and elsewhere stops with a one-line error (YES=1: no question).
EXAMPLES ?= 10,100,1000,all
EPOCHS   ?= 3,10,30
sweep: setup ## a grid of experiments (EXAMPLES=10,100 EPOCHS=3,10; YES=1 skips the cost question)
	$(RUN) $(BIN)/python -m tlstudy.sweep run --examples $(EXAMPLES) --epochs $(EPOCHS) \
	  $(if $(YES),--yes)

# The team's DVC remote (docs/team.md): outputs and run cache, with one-line errors.
push: setup ## outputs and run cache to the team's DVC remote
	$(RUN) $(BIN)/python -m tlstudy.remote push
pull: setup ## outputs and run cache from the team's DVC remote
	$(RUN) $(BIN)/python -m tlstudy.remote pull
