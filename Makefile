# parsing — make help lists the targets.
VENV        ?= .venv
PYTHON      ?= python3
CONFIG      ?= configs/ccp.yaml
CONSTRAINTS ?= constraints.txt
CKPT        ?= runs/ccp/checkpoints/last.ckpt
PY          := $(VENV)/bin/python
PIP         := $(VENV)/bin/pip
export NO_ALBUMENTATIONS_UPDATE := 1

.DEFAULT_GOAL := help
.PHONY: help install train train-outfit resume evaluate test test-fast bench-outfit lint format clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: setup.cfg pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c $(CONSTRAINTS) torch==2.13.0
	$(PIP) install -q -c $(CONSTRAINTS) -e ".[dev,crf]"
	touch $@

install: $(VENV)/.installed  ## create .venv and install parsing with torch pinned (CPU build)

train: install  ## train the default config (CONFIG=configs/ccp.yaml) on CCP
	$(PY) -m parsing fit --config $(CONFIG)

train-outfit: install  ## outfit-encoder stages 2 and 3 on top of the default run (configs/ccp-outfit*.yaml)
	$(PY) -m parsing fit --config configs/ccp-outfit-stage2.yaml
	$(PY) -m parsing fit --config configs/ccp-outfit.yaml

resume: install  ## continue the default run from its last.ckpt
	$(PY) -m parsing fit --config $(CONFIG) --ckpt_path runs/ccp/checkpoints/last.ckpt

evaluate: install  ## score CKPT (default: the default run's last.ckpt) on the val split at full resolution
	$(PY) -m parsing test --config $(CONFIG) --ckpt_path $(CKPT)

test: install  ## the whole test suite, slow-marked tests included (CPU, offline, a few minutes)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

test-fast: install  ## the test suite without slow-marked tests
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow"

bench-outfit: install  ## outfit-encoder benchmark from the default run's checkpoint (CKPT) → bench/results/
	$(PY) bench/outfit.py --plain $(CKPT)

lint: install  ## ruff lint + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:  ## remove the virtualenv and caches (keeps runs/)
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
