"""The processor this runs on, and the instruction sets the model runtimes use on it.

    processor().summary()   # 'Intel(R) Xeon(R) Processor · AVX2 AVX-512 VNNI BF16 FP16 AMX'
    llama_cpp_features()    # what llama.cpp reports it runs with: ('SSE3', 'AVX2', 'AVX512', ...)
    onnxruntime_info()      # onnxruntime's version, providers and the MLAS kernels the flags select

A figure measured on one processor does not hold on another: the benches print
`processor_line()` above their figures, and `rag models info` and the start-up log
(`runtime_fields()`) name the instruction sets each runtime uses.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

CPUINFO = Path("/proc/cpuinfo")

#: The SIMD features told, in order: a name, the /proc/cpuinfo flag that says it, and its
#: word in the one-line summary ("" for none: every processor with AVX2 has FMA and F16C).
FEATURES: tuple[tuple[str, str, str], ...] = (
    ("FMA", "fma", ""),
    ("F16C", "f16c", ""),
    ("AVX2", "avx2", "AVX2"),
    ("AVX-512", "avx512f", "AVX-512"),
    ("AVX-512 VNNI", "avx512_vnni", "VNNI"),
    ("AVX-VNNI", "avx_vnni", "VNNI"),
    ("AVX-512 BF16", "avx512_bf16", "BF16"),
    ("AVX-512 FP16", "avx512_fp16", "FP16"),
    ("AMX-TILE", "amx_tile", "AMX"),
    ("AMX-INT8", "amx_int8", "AMX"),
    ("AMX-BF16", "amx_bf16", "AMX"),
)
NOT_LOADED = "not-loaded"


@dataclass(frozen=True)
class Processor:
    """A processor's model name and its feature flags (empty where the system tells none)."""

    model: str
    flags: frozenset[str]

    @property
    def features(self) -> tuple[str, ...]:
        """The SIMD features of FEATURES it has, by name."""
        return tuple(name for name, flag, _ in FEATURES if flag in self.flags)

    def summary(self) -> str:
        """One line: the model, then the summary words of its features."""
        words = dict.fromkeys(word for _, flag, word in FEATURES if word and flag in self.flags)
        told = " ".join(words) or ("no AVX2" if self.flags else "SIMD features unknown")
        return f"{self.model} · {told}"


def processor_line() -> str:
    """The line the benches print above their figures: `processor: <model> · <features>`."""
    return f"processor: {processor().summary()}"


def parse_cpuinfo(text: str) -> Processor:
    """The first processor of a /proc/cpuinfo text; without a model name, what the
    platform module tells (an empty text gives that and no flags)."""
    fields: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    model = fields.get("model name") or platform.processor() or platform.machine() or "unknown processor"
    return Processor(model, frozenset(fields.get("flags", "").split()))


@cache
def processor() -> Processor:
    """This machine's processor, from /proc/cpuinfo (Linux); elsewhere its name alone."""
    try:
        text = CPUINFO.read_text()
    except OSError:
        text = ""
    return parse_cpuinfo(text)


def parse_llama_system_info(text: str) -> tuple[str, ...]:
    """The features llama.cpp's system info marks `= 1`, in its own words and order:
    'CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 0 | ...' gives ('SSE3', 'AVX2')."""
    found: dict[str, None] = {}
    for part in text.split("|"):
        name, sep, value = part.rpartition("=")
        name = name.rpartition(":")[2].strip()
        if sep and name and value.strip() == "1":
            found[name] = None
    return tuple(found)


def llama_cpp_features() -> tuple[str, ...] | None:
    """What llama.cpp runs with in this process (`llama_print_system_info`): the instruction
    sets of the CPU backend it loaded, among other build features; None without llama.cpp.
    Imports llama_cpp, which takes a moment when nothing else has."""
    try:
        import llama_cpp
    except ImportError:
        return None
    info = llama_cpp.llama_print_system_info()
    return parse_llama_system_info(info.decode() if isinstance(info, bytes) else str(info))


def mlas_kernels(flags: frozenset[str]) -> dict[str, str]:
    """The kernel families onnxruntime's MLAS picks on a processor with these flags, for
    int8 matrix products (the quantized embedder's MatMuls) and fp32 ones.

    Derived, not reported: onnxruntime tells no instruction set through its API. MLAS
    chooses its kernels once, at load, from CPUID bits (onnxruntime/core/mlas/lib/
    platform.cpp); this follows the same checks on the flags Linux shows for those bits:
    AVX2 with FMA, then AVX-VNNI, then AVX-512 F/BW/DQ/VL, then AVX-512 VNNI, and AMX
    (tile and int8) over all of them, which MLAS uses when the kernel grants it the tile
    state. Empty when the flags are unknown (not Linux, or not x86).
    """
    if not flags:
        return {}
    if not {"avx2", "fma"} <= flags:
        return {"int8": "SSE", "fp32": "AVX" if "avx" in flags else "SSE"}
    if {"amx_tile", "amx_int8"} <= flags:
        int8 = "AMX"
    elif {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        int8 = "AVX-512 VNNI" if "avx512_vnni" in flags else "AVX-512"
    else:
        int8 = "AVX-VNNI" if "avx_vnni" in flags else "AVX2"
    return {"int8": int8, "fp32": "AVX-512F" if "avx512f" in flags else "FMA3"}


@dataclass(frozen=True)
class OnnxRuntimeInfo:
    """onnxruntime's version and providers, and the MLAS kernels derived from the flags."""

    version: str
    providers: tuple[str, ...]
    kernels: dict[str, str]


def onnxruntime_info() -> OnnxRuntimeInfo | None:
    """onnxruntime as this process has it; None when it is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    providers = tuple(onnxruntime.get_available_providers())
    return OnnxRuntimeInfo(onnxruntime.__version__, providers, mlas_kernels(processor().flags))


def describe() -> dict[str, Any]:
    """The processor and both runtimes, as `rag models info --json` prints them (imports
    llama_cpp and onnxruntime)."""
    cpu = processor()
    llama = llama_cpp_features()
    ort = onnxruntime_info()
    onnx = None
    if ort is not None:
        onnx = {
            "version": ort.version,
            "providers": list(ort.providers),
            "mlas_kernels": ort.kernels,
            "mlas_kernels_derived_from": "the processor's flags, as MLAS checks them",
        }
    return {
        "model": cpu.model,
        "simd": list(cpu.features),
        "summary": cpu.summary(),
        "llama_cpp": None if llama is None else list(llama),
        "onnxruntime": onnx,
    }


def runtime_fields() -> str:
    """The start-up log's key=value fields. A runtime this process has not imported is
    `not-loaded`: nothing is imported here, so logging this costs no start-up time."""
    cpu = processor()
    llama = ",".join(llama_cpp_features() or ()) if "llama_cpp" in sys.modules else NOT_LOADED
    ort = onnxruntime_info() if "onnxruntime" in sys.modules else None
    kernels = ",".join(f"{k}:{v}" for k, v in ort.kernels.items()) if ort else NOT_LOADED
    simd = ",".join(cpu.features).replace(" ", "_") or "unknown"
    return (
        f'model="{cpu.model}" simd={simd} llama_cpp={llama or "none"} '
        f"onnxruntime={ort.version if ort else NOT_LOADED} mlas_from_flags={kernels.replace(' ', '_')}"
    )
