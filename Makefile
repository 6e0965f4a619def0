# One command to an answer (`make demo`), one to a green test run (`make test`).
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test lint typecheck unit bench clean

setup: $(STAMP)

# torch first, pinned to the CPU build, so nothing pulls a multi-GB CUDA build.
# llama-cpp-python builds from source once (several minutes); pip caches the wheel.
$(STAMP): pyproject.toml
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

typecheck:
	$(BIN)/mypy

unit:
	$(BIN)/pytest

bench: setup
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/answer.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
