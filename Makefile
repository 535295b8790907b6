# Two entry points (see README "Quick start"): `make run` and `make test`.
# Both create .venv on first use; torch is pinned to the local CPU build first,
# because an unpinned torch pulls several GB of CUDA wheels.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test ingest bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@# Debian packages the assistant uses when present: WordNet (ordinary-English checks). Best effort:
	@# without root or apt the assistant still runs, with those checks reduced (see README).
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && ! dpkg -s wordnet-base >/dev/null 2>&1; then \
		apt-get install -y -q wordnet-base >/dev/null || echo "note: apt-get install wordnet-base failed; continuing"; fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip wheel setuptools
	$(PY) -m pip install torch==2.13.0
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

run: setup
	$(PY) -m neoc_assistant ingest
	$(PY) -m neoc_assistant serve

test: setup
	$(PY) -m pytest

ingest: setup
	$(PY) -m neoc_assistant ingest

clean:
	rm -rf $(VENV) .pytest_cache
