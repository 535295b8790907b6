# Two entry points (see README "Quick start"): `make run` and `make test`.
# Both create .venv on first use; torch is pinned to the local CPU build first,
# because an unpinned torch pulls several GB of CUDA wheels.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# OCR (ingest/ocr.py names the same packages in its message when they are missing).
OCR_PACKAGES := tesseract-ocr tesseract-ocr-eng tesseract-ocr-nep poppler-utils
# llama.cpp is compiled for this CPU (-march=native), but its AMX kernels die with "Illegal instruction"
# on VMs that advertise AMX without letting a process use it (seen here: every model load crashed).
# Explicit -mno-* flags win over -march=native in GCC; the AVX-512 kernels are unaffected.
LLAMA_CFLAGS := $(if $(filter x86_64,$(shell uname -m)),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16,)

.PHONY: setup run test ingest bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@# Debian packages used when present: WordNet (ordinary-English checks), redis-server (the
	@# scale-out test starts one), Tesseract with English and Nepali and poppler-utils (OCR of scanned
	@# PDFs and images, ingest/ocr.py). Best effort: without root or apt the assistant still runs, with
	@# those checks reduced and scans failing with what to install (see README); .ci/run installs them.
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		missing=""; for p in wordnet-base redis-server $(OCR_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
		if [ -n "$$missing" ]; then \
			apt-get install -y -q --no-install-recommends $$missing >/dev/null 2>&1 || \
			{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends $$missing >/dev/null; } || \
			echo "note: apt-get install$$missing failed; continuing"; fi; fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip wheel setuptools
	$(PY) -m pip install torch==2.13.0
	CFLAGS="$(LLAMA_CFLAGS)" CXXFLAGS="$(LLAMA_CFLAGS)" $(PY) -m pip install --no-cache-dir 'llama-cpp-python>=0.3.16'
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

run: setup
	$(PY) -m neoc_assistant ingest
	$(PY) -m neoc_assistant serve

test: setup
	$(PY) -m ruff check neoc_assistant
	$(PY) -m mypy
	$(PY) -m pytest

ingest: setup
	$(PY) -m neoc_assistant ingest

clean:
	rm -rf $(VENV) .pytest_cache
