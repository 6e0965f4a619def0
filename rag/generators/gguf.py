"""GGUF files: what a model is, read from its header alone (metadata and tensor list, no
weights read), what it costs in RAM, and quantization by llama.cpp.

The RAM a model needs is estimated as its weights (the file's tensor data, memory-mapped)
plus the KV cache at a given context size, plus a measured compute overhead.
"""

from __future__ import annotations

import logging
import math
import mmap
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import ConfigError

logger = logging.getLogger(__name__)

MAGIC = b"GGUF"
MIB = 1024 * 1024
#: Beyond the weights and the KV cache, llama.cpp's compute buffers, the output logits and
#: the runtime itself: measured for the packaged model (bench/decoding.py --ram), 48 MiB at
#: n_ctx 2048 and 8192 alike.
OVERHEAD_BYTES = 48 * MIB
MIN_CTX = 512  # the smallest context picked to fit a RAM budget
CTX_STEP = 256
LONG_ARRAY = 16  # arrays longer than this (vocabularies) are summarised, not kept

# GGUF metadata value types.
_SCALARS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9

#: ggml tensor types: name, (elements per block, bytes per block).
TENSOR_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
}

#: llama.cpp file types (`general.file_type`): how the file as a whole was quantized.
FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
}


class GGUFError(ConfigError):
    """A file that is not a readable GGUF model."""


@dataclass
class ModelInfo:
    """What a GGUF file says about its model, read from its header."""

    name: str
    path: Path
    file_size: int
    architecture: str
    parameters: int
    quantization: str
    context_length: int | None
    chat_template: bool
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_embd: int
    weights_bytes: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def licence(self) -> str | None:
        value = self.metadata.get("general.license") or self.metadata.get("general.license.name")
        return str(value) if value else None

    def kv_cache_bytes(self, n_ctx: int) -> int:
        """The f16 KV cache: a key and a value vector per layer, KV head and token."""
        return 2 * self.n_layer * n_ctx * self.n_head_kv * self.head_dim * 2

    def ram_bytes(self, n_ctx: int) -> int:
        """Estimated resident memory with this context: weights + KV cache + overhead."""
        return self.weights_bytes + self.kv_cache_bytes(n_ctx) + OVERHEAD_BYTES

    def fit_context(self, budget_bytes: int | None) -> int:
        """The largest context, up to the trained one, whose estimate fits the budget."""
        trained = self.context_length or 4096
        if budget_bytes is None or self.kv_cache_bytes(1) == 0:
            return trained
        room = budget_bytes - self.weights_bytes - OVERHEAD_BYTES
        fits = room // self.kv_cache_bytes(1) if room > 0 else 0
        n_ctx = min(trained, fits // CTX_STEP * CTX_STEP)
        return max(min(MIN_CTX, trained), n_ctx)

    def summary(self, n_ctx: int) -> dict[str, Any]:
        """The fields `rag models list` and `/v1/models` show, as plain values."""
        return {
            "name": self.name,
            "architecture": self.architecture,
            "parameters": self.parameters,
            "quantization": self.quantization,
            "file_size": self.file_size,
            "context_length": self.context_length,
            "chat_template": self.chat_template,
            "licence": self.licence,
            "n_ctx": n_ctx,
            "ram_bytes": self.ram_bytes(n_ctx),
        }


def read_gguf(path: Path) -> ModelInfo:
    """Describe a GGUF file from its header; GGUFError (one line) if it is not one."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            if fh.read(4) != MAGIC:
                raise GGUFError(f"{path}: not a GGUF file (no GGUF magic number)")
            if size < 24:
                raise _Truncated
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return _Header(data, path, size).parse()
    except OSError as exc:
        raise GGUFError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (struct.error, UnicodeDecodeError, _Truncated):
        raise GGUFError(f"{path}: not a valid GGUF file (truncated or corrupt header)") from None


class _Truncated(Exception):
    pass


class _Header:
    """A cursor over a memory-mapped GGUF file's header."""

    def __init__(self, data: mmap.mmap, path: Path, size: int) -> None:
        self.data, self.path, self.size, self.at = data, path, size, 0

    def unpack(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.data, self.at)[0]
        self.at += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        n = self.unpack("<Q")
        if self.at + n > self.size:
            raise _Truncated
        text = self.data[self.at : self.at + n].decode("utf-8")
        self.at += n
        return text

    def value(self, kind: int) -> Any:
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind != _ARRAY:
            raise _Truncated
        item, count = self.unpack("<I"), self.unpack("<Q")
        if count > self.size:
            raise _Truncated
        if count <= LONG_ARRAY:
            return [self.value(item) for _ in range(count)]
        if item in _SCALARS:  # skipped whole
            self.at += count * struct.calcsize(_SCALARS[item])
        elif item == _STRING:
            for _ in range(count):
                self.at += 8 + struct.unpack_from("<Q", self.data, self.at)[0]
        else:
            for _ in range(count):
                self.value(item)
        if self.at > self.size:
            raise _Truncated
        return _LongArray(count)

    def parse(self) -> ModelInfo:
        path = self.path
        if self.data[:4] != MAGIC:
            raise GGUFError(f"{path}: not a GGUF file (no GGUF magic number)")
        self.at = 4
        version = self.unpack("<I")
        if version not in (2, 3):
            raise GGUFError(f"{path}: unsupported GGUF version {version} (2 and 3 are read)")
        n_tensors, n_kv = self.unpack("<Q"), self.unpack("<Q")
        if n_tensors > self.size or n_kv > self.size:
            raise _Truncated
        meta: dict[str, Any] = {}
        for _ in range(n_kv):
            key = self.string()
            meta[key] = self.value(self.unpack("<I"))
        parameters, by_type, data_end = 0, Counter[int](), 0
        for _ in range(n_tensors):
            self.string()  # the tensor's name
            dims = [self.unpack("<Q") for _ in range(self.unpack("<I"))]
            kind, offset = self.unpack("<I"), self.unpack("<Q")
            count = math.prod(dims)
            parameters += count
            known = TENSOR_TYPES.get(kind)
            nbytes = count // known[1] * known[2] if known else 0
            by_type[kind] += nbytes or count
            data_end = max(data_end, offset + nbytes)
        align = int(meta.get("general.alignment", 32) or 32)
        data_start = -(-self.at // align) * align
        if data_start + data_end > self.size:
            raise GGUFError(f"{path}: not a valid GGUF file (truncated: its tensors end past the file)")
        return _info(path, self.size, meta, parameters, by_type, self.size - data_start)


class _LongArray(list[Any]):
    """A long metadata array (a vocabulary): only its length is kept."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.length = count

    def __repr__(self) -> str:
        return f"[{self.length} items]"


def _info(
    path: Path, size: int, meta: dict[str, Any], parameters: int, by_type: Counter[int], weights: int
) -> ModelInfo:
    arch = str(meta.get("general.architecture", "unknown"))

    def arch_int(key: str, default: int = 0) -> int:
        found = meta.get(f"{arch}.{key}", default)
        if isinstance(found, list):  # per-layer counts (some architectures): the largest
            found = max(found, default=default)
        return int(found)

    n_head = arch_int("attention.head_count")
    n_embd = arch_int("embedding_length")
    head_dim = arch_int("attention.key_length") or (n_embd // n_head if n_head else 0)
    file_type = meta.get("general.file_type")
    if isinstance(file_type, int) and file_type in FILE_TYPES:
        quantization = FILE_TYPES[file_type]
    else:  # the type holding most of the weights
        main = by_type.most_common(1)[0][0] if by_type else None
        quantization = TENSOR_TYPES[main][0] if main in TENSOR_TYPES else "unknown"
    context = meta.get(f"{arch}.context_length")
    return ModelInfo(
        name=path.name.removesuffix(".gguf"),
        path=path,
        file_size=size,
        architecture=arch,
        parameters=parameters,
        quantization=quantization,
        context_length=int(context) if context else None,
        chat_template=bool(meta.get("tokenizer.chat_template")),
        n_layer=arch_int("block_count"),
        n_head=n_head,
        n_head_kv=arch_int("attention.head_count_kv") or n_head,
        head_dim=head_dim,
        n_embd=n_embd,
        weights_bytes=weights,
        metadata=meta,
    )


def quantize(source: Path, target: Path, quantization: str, threads: int | None = None) -> ModelInfo:
    """Write a copy of a GGUF model quantized to another type (Q8_0, Q4_0, Q4_K_M...)
    through llama.cpp; a quantized model can be quantized again, with some quality lost."""
    import ctypes

    import llama_cpp

    wanted = quantization.upper()
    ftype = next((k for k, v in FILE_TYPES.items() if v == wanted), None)
    if ftype is None:
        raise ConfigError(f"unknown quantization {quantization!r} (known: {', '.join(FILE_TYPES.values())})")
    read_gguf(source)  # a bad source is one clear line, not a llama.cpp failure
    if target.exists():
        raise ConfigError(f"{target} exists already")
    target.parent.mkdir(parents=True, exist_ok=True)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = threads or 0
    partial = target.with_name(target.name + ".part")
    code = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), ctypes.byref(params))
    if code != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise ConfigError(f"llama.cpp could not quantize {source} to {wanted} (code {code})")
    partial.rename(target)
    logger.info("quantized source=%s target=%s type=%s", source, target, wanted)
    return read_gguf(target)


def quantized_name(name: str, quantization: str) -> str:
    """`SmolLM2-135M-Instruct.Q4_1` quantized to Q8_0: `SmolLM2-135M-Instruct.Q8_0`."""
    stem, dot, last = name.rpartition(".")
    base = stem if dot and last.upper() in FILE_TYPES.values() else name
    return f"{base}.{quantization.upper()}"
