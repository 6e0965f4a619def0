"""The processor and the instruction sets the runtimes use: parsing, this machine, the log
line and `rag models info`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

import rag.pipeline as pipeline_module
from rag.config import Settings
from rag.hardware import (
    llama_cpp_features,
    mlas_kernels,
    onnxruntime_info,
    parse_cpuinfo,
    parse_llama_system_info,
    processor,
    processor_line,
    runtime_fields,
)
from tests.fakes import EchoGenerator, HashEmbedder
from tests.test_cli import rag

XEON = """processor	: 0
vendor_id	: GenuineIntel
model name	: Intel(R) Xeon(R) Processor
flags		: fpu sse sse2 avx fma f16c avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx_vnni \
avx512_bf16 avx512_vnni avx512_fp16 amx_bf16 amx_tile amx_int8

processor	: 1
vendor_id	: GenuineIntel
model name	: Another Processor
flags		: fpu sse sse2
"""
EPYC_AVX2 = """processor	: 0
vendor_id	: AuthenticAMD
model name	: AMD EPYC 7B12 64-Core Processor
flags		: fpu sse sse2 avx fma f16c avx2 bmi2
"""
LLAMA_INFO = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | AVX512 = 0 | "
    "AVX512_VNNI = 0 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | "
)


def test_cpuinfo_with_avx512_and_amx() -> None:
    cpu = parse_cpuinfo(XEON)
    assert cpu.model == "Intel(R) Xeon(R) Processor"  # the first processor's
    assert ", ".join(cpu.features) == (
        "FMA, F16C, AVX2, AVX-512, AVX-512 VNNI, AVX-VNNI, AVX-512 BF16, AVX-512 FP16, "
        "AMX-TILE, AMX-INT8, AMX-BF16"
    )
    assert cpu.summary() == "Intel(R) Xeon(R) Processor · AVX2 AVX-512 VNNI BF16 FP16 AMX"
    assert mlas_kernels(cpu.flags) == {"int8": "AMX", "fp32": "AVX-512F"}
    no_amx = cpu.flags - {"amx_tile", "amx_int8", "amx_bf16"}
    assert mlas_kernels(no_amx) == {"int8": "AVX-512 VNNI", "fp32": "AVX-512F"}


def test_cpuinfo_without_avx512() -> None:
    cpu = parse_cpuinfo(EPYC_AVX2)
    assert cpu.model == "AMD EPYC 7B12 64-Core Processor"
    assert cpu.features == ("FMA", "F16C", "AVX2")
    assert cpu.summary() == "AMD EPYC 7B12 64-Core Processor · AVX2"
    assert mlas_kernels(cpu.flags) == {"int8": "AVX2", "fp32": "FMA3"}
    assert mlas_kernels(cpu.flags | {"avx_vnni"})["int8"] == "AVX-VNNI"
    assert parse_cpuinfo(EPYC_AVX2.replace(" avx2", "").replace(" fma", "")).summary().endswith("· no AVX2")


def test_cpuinfo_without_flags_still_names_a_processor() -> None:
    cpu = parse_cpuinfo("")  # not Linux: the platform module's name
    assert cpu.model and not cpu.features and cpu.summary().endswith("· SIMD features unknown")
    assert mlas_kernels(cpu.flags) == {}


def test_llama_system_info() -> None:
    found = parse_llama_system_info(LLAMA_INFO)
    assert " ".join(found) == "SSE3 SSSE3 AVX AVX2 F16C FMA LLAMAFILE OPENMP REPACK"
    two_backends = "CPU : AVX2 = 1 | AVX512 = 1 | Other : AVX2 = 1 | X = 0"
    assert parse_llama_system_info(two_backends) == ("AVX2", "AVX512")  # each once
    assert parse_llama_system_info("") == ()


def test_this_machine() -> None:
    cpu = processor()
    assert cpu.model.strip() and "AVX2" in cpu.features  # every processor of this kind has AVX2
    assert processor_line() == f"processor: {cpu.summary()}" and "AVX2" in processor_line()
    assert "AVX2" in (llama_cpp_features() or ())
    ort = onnxruntime_info()
    assert ort is not None and ort.version and "CPUExecutionProvider" in ort.providers
    assert ort.kernels["int8"] in {"AVX2", "AVX-VNNI", "AVX-512", "AVX-512 VNNI", "AMX"}


def test_the_pipeline_logs_the_runtimes_once_loaded(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(pipeline_module, "make_embedder", lambda *_, **__: HashEmbedder())
    monkeypatch.setattr(pipeline_module, "make_generator", lambda _: EchoGenerator())
    with caplog.at_level(logging.INFO, logger="rag.pipeline"):
        pipeline_module.Pipeline.from_settings(settings)
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("cpu ")]
    assert line == f"cpu {runtime_fields()}"
    assert f'model="{processor().model}"' in line and ",AVX2," in line and " llama_cpp=" in line


def test_models_info_names_the_processor_and_runtimes(tmp_path: Path) -> None:
    r = rag("models", "info", "--json", cwd=tmp_path)  # the default model
    assert r.returncode == 0, r.stderr
    shown: dict[str, Any] = json.loads(r.stdout)
    assert shown["name"] == "SmolLM2-135M-Instruct.Q4_1" and "kv_cache_bytes" in shown  # as before
    cpu = shown["cpu"]
    assert cpu["model"] == processor().model and "AVX2" in cpu["simd"] and "AVX2" in cpu["llama_cpp"]
    ort = cpu["onnxruntime"]
    assert ort["mlas_kernels"]["int8"] and "CPUExecutionProvider" in ort["providers"]
    table = rag("models", "info", "SmolLM2-135M-Instruct.Q4_1", cwd=tmp_path).stdout
    assert "GGUF metadata" in table and "processor and runtimes" in table
    assert processor().model in table and "llama.cpp runs with" in table
    assert "derived from the processor's flags" in " ".join(table.split())
