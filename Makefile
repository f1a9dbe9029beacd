# parsing — make help lists the targets.
VENV        ?= .venv
PYTHON      ?= python3
CONFIG      ?= configs/ccp.yaml
CONSTRAINTS ?= constraints.txt
CKPT        ?= runs/ccp/checkpoints/last.ckpt
INPUT       ?= ../shared/data/ccp/photos
OUT         ?= predictions/ccp
CRF         ?= fast
PY          := $(VENV)/bin/python
PIP         := $(VENV)/bin/pip
export NO_ALBUMENTATIONS_UPDATE := 1

.DEFAULT_GOAL := help
.PHONY: help install predict serve train train-hires train-ship pseudo ship train-outfit finetune resume evaluate check-data export test \
        test-fast bench-outfit bench-crf bench-robustness bench-garments bench-predict bench-stages bench-serve bench-startup bench-finetune docs lint format clean

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(VENV)/.installed: setup.cfg setup.py pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c $(CONSTRAINTS) torch==2.13.0
	$(PIP) uninstall -q -y parsing 2>/dev/null || true  # the distribution's name before 0.3 (now clothing-parsing)
	$(PIP) install -q -c $(CONSTRAINTS) -e ".[dev,train,crf,serve,ray,docs,search]"
	$(PY) -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'parsing-torchvision.pth').write_text('import _parsing_startup\\n')"
	touch $@

install: $(VENV)/.installed  ## create .venv and install parsing with torch pinned (CPU build)

predict: install  ## parse INPUT (default: the CCP photos) with the shipped model → OUT (masks, overlays, summary)
	$(VENV)/bin/parsing-predict $(INPUT) -o $(OUT) --crf $(CRF)

serve: install  ## the HTTP service and web studio on http://127.0.0.1:8000/ (DATASET=dir: where Save writes pairs)
	$(VENV)/bin/parsing serve $(if $(DATASET),--dataset $(DATASET))

train: install  ## train the default config (CONFIG=configs/ccp.yaml) on CCP
	$(PY) -m parsing fit --config $(CONFIG)

train-hires: install  ## step 2 of the shipped recipe: the default run fine-tuned at 512x352 (configs/ccp-hires.yaml)
	$(PY) -m parsing fit --config configs/ccp-hires.yaml

# The shipped recipe as stages. Run `make train-ship` again after a kill and it goes on where it stopped: a stage
# with its runs/STAGE.done is skipped, a killed one resumes from its last.ckpt (or, for pseudo, skips the photos
# done). A stage never starts over a run it did not start (runs/STAGE.started): it stops and says so instead.
# Delete runs/STAGE.* and runs/STAGE/ to train a stage afresh.
STAGE_GUARD = mkdir -p runs; if [ ! -e runs/$(1).started ] && [ -e runs/$(1) ]; then \
	echo "runs/$(1) holds a run that train-ship did not start: move it away, or touch runs/$(1).started to continue it" >&2; \
	exit 1; fi; touch runs/$(1).started
PSEUDO = $(VENV)/bin/parsing pseudo-label --ccp ../shared/data/ccp --checkpoint runs/ccp-ship/checkpoints/last.ckpt \
	-o runs/ccp-pseudo
FIT_STAGE = $(call STAGE_GUARD,$(1)); $(PY) -m parsing fit --config configs/$(1).yaml \
	$$([ -e runs/$(1)/checkpoints/last.ckpt ] && echo --ckpt_path runs/$(1)/checkpoints/last.ckpt) && touch runs/$(1).done

train-ship: install runs/ccp-student.done  ## the shipped model's whole recipe, resumable: train, train-hires, ccp-ship (the teacher), pseudo, the student

runs/ccp.done: | $(VENV)/.installed
	$(call FIT_STAGE,ccp)
runs/ccp-hires.done: | runs/ccp.done
	$(call FIT_STAGE,ccp-hires)
runs/ccp-ship.done: | runs/ccp-hires.done
	$(call FIT_STAGE,ccp-ship)
runs/ccp-pseudo.done: | runs/ccp-ship.done
	$(call STAGE_GUARD,ccp-pseudo); $(PSEUDO) && touch $@
runs/ccp-student.done: | runs/ccp-pseudo.done
	$(call FIT_STAGE,ccp-student)

pseudo: install  ## CCP's tag-only photos labelled by the teacher (runs/ccp-ship), restricted to their tags → runs/ccp-pseudo
	$(PSEUDO)

ship: install  ## pack the student averaged with its teacher (runs/ccp-student + runs/ccp-ship), parsed at 576x384, into parsing/assets
	$(VENV)/bin/parsing rules --data-root ../shared/data/ccp --max-ratio 0.1 > runs/ship-rules.yaml
	$(PY) -m parsing pack runs/ccp-student/checkpoints/last.ckpt parsing/assets/ccp-fpn-lite0.ckpt \
		--average-with runs/ccp-ship/checkpoints/last.ckpt --input-size 576 384 \
		--rules-from runs/ship-rules.yaml --decode-from pooled

train-outfit: install  ## outfit-encoder stages 2 and 3 on top of the default run (configs/ccp-outfit*.yaml)
	$(PY) -m parsing fit --config configs/ccp-outfit-stage2.yaml
	$(PY) -m parsing fit --config configs/ccp-outfit.yaml

finetune: install  ## your photos + labels from the shipped model: make finetune DATA=/data/shop [LABELS="[background, …]"] [EPOCHS=N]
	$(if $(DATA),,$(error give DATA=folder (images/ + masks/, and labels.txt or LABELS="[names in mask-value order]")))
	$(PY) -m parsing fit --config configs/finetune.yaml --data.root $(DATA) $(if $(LABELS),--data.labels "$(LABELS)") \
	  $(if $(EPOCHS),--trainer.max_epochs $(EPOCHS)) $(if $(RESUME),--ckpt_path runs/finetune/checkpoints/last.ckpt)

resume: install  ## continue a killed run of CONFIG from its last.ckpt (e.g. CONFIG=configs/ccp-ship.yaml)
	$(PY) -m parsing fit --config $(CONFIG) --ckpt_path runs/$(basename $(notdir $(CONFIG)))/checkpoints/last.ckpt

check-data: install  ## list every problem in a dataset: CCP by default, or DATA=… [FORMAT=folder|coco] [LABELS="[a, b]"]
	$(VENV)/bin/parsing check-data $(or $(DATA),../shared/data/ccp) $(if $(FORMAT),--format $(FORMAT)) \
		$(if $(LABELS),--labels "$(LABELS)")

export: install  ## export the shipped model (or CKPT=…) to exports/model.onnx + model.pt, with a parity check
	mkdir -p exports
	$(PY) -m parsing export $(if $(filter command line,$(origin CKPT)),$(CKPT)) exports/model.onnx \
		--torchscript exports/model.pt --check ../shared/data/ccp/photos/0009.jpg

evaluate: install  ## score CKPT (default: the default run's last.ckpt) on the val split at full resolution
	$(PY) -m parsing test --config $(CONFIG) --ckpt_path $(CKPT)

test: install  ## the whole test suite, slow-marked tests included (CPU, offline, a few minutes)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

test-fast: install  ## the test suite without slow-marked tests
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow"

bench-crf: install  ## CRF benchmark (none / dense / fast) with the shipped model → bench/results/crf.{json,md}
	$(PY) bench/crf.py

bench-robustness: install  ## the shipped model (or CKPT=…) on re-framed validation photos → bench/results/robustness.*
	$(PY) bench/robustness.py $(if $(filter command line,$(origin CKPT)),--checkpoints $(CKPT))

bench-garments: install  ## garment naming, tags and merges (shipped model or CKPT=…) → bench/results/garments.*
	$(PY) bench/garments.py $(if $(filter command line,$(origin CKPT)),--checkpoints $(CKPT))

bench-predict: install  ## parsing-predict throughput per option set → bench/results/predict.*
	$(PY) bench/predict.py

bench-stages: install  ## seconds per photo of each stage of the default pipeline vs one forward pass → bench/results/stages.*
	$(PY) bench/stages.py

bench-startup: install  ## start-up of Parser.load() + a parse and of the commands, against `import torch` → bench/results/startup.*
	$(PY) bench/startup.py

bench-serve: install  ## the service under load (8 clients x 25 photos) and bad uploads → bench/results/serve.*
	$(PY) bench/serve.py

bench-finetune: install  ## --merge vs fine-tunes from shipped/ImageNet on 25/50/100/all photos (~50 min) → bench/results/finetune.*
	$(PY) bench/finetune.py

bench-outfit: install  ## outfit settings, each continuing the shipped model (or CKPT=…) 120 steps; needs make pseudo
	$(PY) bench/outfit.py --steps 120 $(if $(filter command line,$(origin CKPT)),--start $(CKPT))

docs: install  ## the documentation site (mkdocs-material) → site/; open site/index.html
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

lint: install  ## ruff lint + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:  ## remove the virtualenv and caches (keeps runs/)
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
