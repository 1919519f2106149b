# Two commands do all the set-up: `make repro` runs the pipeline, `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.installed
# Stages call `python -m stages.<name>`: the virtual environment's python must come first.
RUN    := PATH="$(BIN):$$PATH"

.PHONY: setup dataset browser repro test test-fast benchmark benchmark-study calibration sweep pr-report push pull

# DVC's plots page with vega, vega-lite and vega-embed inline (.dvc/config: plots.html_template).
TEMPLATE := .dvc/plots/offline.html

setup: $(STAMP) $(TEMPLATE) dataset

$(TEMPLATE): $(STAMP) tlstudy/vega.py
	$(BIN)/python -m tlstudy.vega template $@

# TensorFlow's CUDA build where nvidia-smi lists a GPU, tensorflow-cpu elsewhere (tlstudy/accelerator.py
# picks the line; the run's recorded environment names the build that came).
$(STAMP): requirements.txt requirements-nodeps.txt tlstudy/accelerator.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	TF="$$($(PYTHON) -m tlstudy.accelerator)" && $(BIN)/pip install --quiet -r requirements.txt "$$TF"
	$(BIN)/pip install --quiet --no-deps -r requirements-nodeps.txt
	touch $@

# Fashion-MNIST from Debian's package where apt exists and we may use it; elsewhere (no apt, no root
# and no sudo, or apt fails) the fetch stage downloads it from the official mirror, checked by MD5.
dataset:
	@$(call apt_install,/usr/share/datasets/fashion-mnist,dataset-fashion-mnist,the fetch stage will download Fashion-MNIST)

# $(call apt_install,path that shows it is installed,package,what happens without it)
apt_install = if [ ! -e $(1) ]; then \
	  if ! command -v apt-get >/dev/null; then echo "No apt-get here: $(3)."; \
	  elif [ "$$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then echo "Not root and no sudo: $(3)."; \
	  else SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	    ($$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $(2)) || echo "apt-get failed: $(3)."; \
	  fi; \
	fi

repro: setup
	$(RUN) $(BIN)/dvc repro
	@echo "Report: report/report.html (numbers: $(VENV)/bin/dvc metrics show)"

# The test suite also opens DVC's plots page in a real browser: Debian's chromium, where apt exists.
browser:
	@$(call apt_install,/usr/bin/chromium,chromium,the browser test will be skipped)

# Two pytest-xdist workers, one test module each at a time (tests/conftest.py): most of the suite's time
# is single-threaded (imports, graph building, DVC), so two cores run two modules side by side.
TEST_WORKERS ?= 2

test: setup browser
	$(RUN) $(BIN)/python -m pytest -n $(TEST_WORKERS)

# Unit tests only, without the end-to-end dvc repro.
test-fast: setup
	$(RUN) $(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not slow"

# Training throughput: the project's path against plain model.fit, cached features against end to end.
benchmark: setup
	$(RUN) $(BIN)/python -m benchmarks.throughput

# One ResNet50 run of the default regime, stage by stage: wall time, peak memory, overhead ratio,
# runs per hour (after `make repro`, whose data, split and initial weights it reuses).
benchmark-study: setup
	$(RUN) $(BIN)/python -m benchmarks.study

# The verdict's calibration: false verdicts under the null and power, by simulation (README, "Calibration").
calibration: setup
	$(RUN) $(BIN)/python -m benchmarks.calibration

# The pull-request comment: verdicts, `dvc metrics diff --md`, every plot as a PNG, in pr-report/.
BASE ?= main
HEAD ?= workspace
pr-report: setup
	$(RUN) $(BIN)/python -m tlstudy.review --base $(BASE) --head $(HEAD) --out pr-report

# A grid of DVC experiments over dataset size and epochs, collected into sweep/.
EXAMPLES ?= 10,100,1000,all
EPOCHS   ?= 3,10,30
sweep: setup
	$(RUN) $(BIN)/python -m tlstudy.sweep run --examples $(EXAMPLES) --epochs $(EPOCHS)

# The team's DVC remote (README, "Working as a team"): outputs and run cache, with one-line errors.
push: setup
	$(RUN) $(BIN)/python -m tlstudy.remote push
pull: setup
	$(RUN) $(BIN)/python -m tlstudy.remote pull
