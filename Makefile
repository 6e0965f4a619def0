# One command to an answer (`make demo`), one to a green test run (`make test`).
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# The offline environment (HF_HUB_OFFLINE and friends) is set by rag.offline.ensure_offline().

.PHONY: setup demo test lint typecheck unit bench clean

# llama.cpp is compiled for this processor's instruction sets, AMX left out: its AMX
# kernels crash (SIGSEGV in ggml_backend_amx_mul_mat) on the packaged model, and AVX-512
# with VNNI does that work nearly as fast. Off x86 (no such flags), llama.cpp's own choice.
CPU_FLAGS := $(shell grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
on       = $(if $(filter $(1),$(CPU_FLAGS)),ON,OFF)
ifneq ($(filter avx2,$(CPU_FLAGS)),)
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_SSE42=$(call on,sse4_2) -DGGML_AVX=$(call on,avx) \
	-DGGML_AVX2=ON -DGGML_FMA=$(call on,fma) -DGGML_F16C=$(call on,f16c) \
	-DGGML_BMI2=$(call on,bmi2) -DGGML_AVX_VNNI=$(call on,avx_vnni) \
	-DGGML_AVX512=$(call on,avx512f) -DGGML_AVX512_VBMI=$(call on,avx512vbmi) \
	-DGGML_AVX512_VNNI=$(call on,avx512_vnni) -DGGML_AVX512_BF16=$(call on,avx512_bf16) \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
endif
LLAMA_SPEC := llama-cpp-python>=0.3.0,<0.4
# A wheel per set of build flags: pip's own cache would hand back one built for other flags.
WHEELS := $(HOME)/.cache/rag-service/wheels/$(shell echo '$(LLAMA_SPEC) $(LLAMA_CMAKE_ARGS)' | sha1sum | cut -c1-12)

setup: $(STAMP)

# torch first, pinned to the CPU build, so nothing pulls a multi-GB CUDA build.
# llama-cpp-python builds from source once (several minutes); pip caches the wheel.
$(STAMP): pyproject.toml Makefile
	@# OCR (ingest.ocr) and its tests: Tesseract with English and French data, if missing
	command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx fra \
		&& tesseract --list-langs 2>/dev/null | grep -qx eng \
		|| { apt-get update -q && apt-get install -y -q tesseract-ocr tesseract-ocr-eng tesseract-ocr-fra; }
	@# The web page's browser tests (tests/web): Debian's Chromium, driven by Playwright
	command -v chromium >/dev/null || { apt-get update -q && apt-get install -y -q chromium; }
	@# Tests where file permissions bite run as a user of their own, let through root's home by an ACL
	command -v setfacl >/dev/null || { apt-get update -q && apt-get install -y -q acl; }
	@# The compose file's check (tests/test_cli.py): Debian's docker-compose validates it
	command -v docker-compose >/dev/null || { apt-get update -q && apt-get install -y -q docker-compose; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	ls $(WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
		$(BIN)/python -m pip wheel --quiet --no-deps --no-cache-dir --no-binary llama-cpp-python \
		-w $(WHEELS) '$(LLAMA_SPEC)'
	$(BIN)/python -m pip install --quiet --force-reinstall --no-deps $(WHEELS)/llama_cpp_python-*.whl
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/rag ingest docs --index docs
	$(BIN)/rag ask "How do I ingest a folder of documents?" --index docs --seed 1

test: setup lint typecheck unit

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/vulture

typecheck:
	$(BIN)/mypy

unit:
	$(BIN)/pytest

bench: setup
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/answer.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
