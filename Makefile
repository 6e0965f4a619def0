# One command to an answer (`make demo`), one to a green test run (`make test`).
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# The offline environment (HF_HUB_OFFLINE and friends) is set by rag.offline.ensure_offline().

.PHONY: setup demo test lint typecheck unit bench clean

setup: $(STAMP)

# torch first, pinned to the CPU build, so nothing pulls a multi-GB CUDA build.
# llama-cpp-python builds from source once (several minutes); pip caches the wheel.
$(STAMP): pyproject.toml
	@# OCR (ingest.ocr) and its tests: Tesseract with English and French data, if missing
	command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx fra \
		&& tesseract --list-langs 2>/dev/null | grep -qx eng \
		|| { apt-get update -q && apt-get install -y -q tesseract-ocr tesseract-ocr-eng tesseract-ocr-fra; }
	@# The web page's browser tests (tests/web): Debian's Chromium, driven by Playwright
	command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; }
	@# The compose file's check (tests/test_cli.py): Debian's docker-compose validates it
	command -v docker-compose >/dev/null || { apt-get update -q && apt-get install -y -q docker-compose; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/rag ingest docs --index docs
	$(BIN)/rag ask "How do I ingest a folder of documents?" --index docs --seed 1

test: setup lint typecheck unit

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

unit:
	$(BIN)/pytest

bench: setup
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/answer.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
