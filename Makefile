# The two commands of the README: `make repro` (the whole DAG) and `make test` (the suite).
# Both create the environment on first use; nothing else needs installing by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UI_PORT ?= 5000
PYTEST_ARGS ?=

# Offline, these tools otherwise wait on the network.
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export DVC_NO_ANALYTICS := 1
export PYTHONDONTWRITEBYTECODE := 1
# Stage commands in dvc.yaml call `python`: make it the project's.
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: all venv repro test test-fast browser mma data ui lint format lock bench clean-venv

all: repro

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[train,dev]'
	touch $(STAMP)

venv: $(STAMP)

# data/ is tracked by data.dvc: pull it from the DVC remote when one is configured,
# otherwise build the default corpus (deterministic, so it matches data.dvc's hash).
data: $(STAMP)
	@if [ -d data ] && [ -f data/REPORT.json ]; then \
	  echo "data/ present"; \
	elif [ -n "$$($(BIN)/dvc remote list 2>/dev/null)" ] && $(BIN)/dvc pull data.dvc; then \
	  echo "data/ pulled from the DVC remote"; \
	else \
	  $(BIN)/python -m pipelines.corpus --output data; \
	fi

# Without mma (and no way to install it) the drums and trio stages are left out, in one line.
repro: data mma
	@if command -v mma >/dev/null 2>&1; then $(BIN)/dvc repro; else \
	  echo "mma is not installed: make repro leaves out the drums and trio corpus and its models"; \
	  $(BIN)/dvc repro $$($(BIN)/python -m pipelines.multitrack.without_mma); fi

test: $(STAMP) browser mma
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# $(call debian_package,PACKAGE,CHECK,WHAT): install a Debian package where we may (root + apt);
# otherwise WHAT skips and says why.
define debian_package
	@if $(2) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null) \
	    || echo "WARNING: could not install $(1); $(3) will skip"; \
	else echo "WARNING: $(1) is not installed; $(3) will skip"; fi
endef

# The MLflow UI test drives a real Chromium.
browser:
	$(call debian_package,chromium,command -v chromium,browser tests)

# Debian's mma: the drums and trio corpus (pipelines/multitrack) plays its grooves, and the
# golden-file test (tests/test_golden_mma.py) reads its MIDI files.
mma:
	$(call debian_package,mma,dpkg -s mma,the drums and trio stages and their tests)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not e2e" $(PYTEST_ARGS)

ui: $(STAMP)
	@mkdir -p mlflow/artifacts
	@echo "MLflow UI: http://127.0.0.1:$(UI_PORT)"
	$(BIN)/mlflow ui --host 127.0.0.1 --port $(UI_PORT) \
	  --workers 1 \
	  --backend-store-uri sqlite:///mlflow/mlflow.db --default-artifact-root mlflow/artifacts

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Regenerate the tested set after changing dependencies.
lock:
	rm -rf /tmp/musicvae-lock && $(PYTHON) -m venv /tmp/musicvae-lock
	/tmp/musicvae-lock/bin/pip install --quiet -e '.[train,dev]'
	(echo "# Tested set of versions (pip constraints). Regenerate: make lock"; \
	 /tmp/musicvae-lock/bin/pip freeze --exclude-editable | sed 's/+cpu$$//') > requirements.lock

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/launch.py

clean-venv:
	rm -rf $(VENV)
