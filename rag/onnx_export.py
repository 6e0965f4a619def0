"""A sentence-transformers folder exported to ONNX and quantized to int8, once, cached.

The first use exports the whole model (transformer, pooling, normalization) with torch's
ONNX exporter and quantizes its weights to int8 per channel with onnxruntime's dynamic
quantization; later uses find the file. Nothing is fetched: the export reads only the
local folder. The file is kept beside the model (`<model>/onnx/`), or in the user's
cache folder (`$XDG_CACHE_HOME/rag/onnx/`) when the model folder is not writable. It is
written to a temporary file and renamed into place, so an interrupted export never
leaves a file that looks finished.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from rag.errors import ConfigError
from rag.offline import ensure_offline

logger = logging.getLogger(__name__)

#: Bumped when the export or quantization recipe changes, so old files are not reused.
RECIPE = "int8-dynamic-per-channel-ffn-out-fp32-v2"
OUTPUT = "sentence_embedding"


def int8_model(model_dir: Path) -> Path:
    """The int8 ONNX file of the sentence-transformers model in `model_dir`, exported and
    quantized on first use (about ten seconds), then reused."""
    file_name = f"model_int8-{fingerprint(model_dir)}.onnx"
    places = [model_dir / "onnx", user_cache_dir() / f"{model_dir.resolve().name}"]
    for place in places:
        if (place / file_name).is_file():
            return place / file_name
    for place in places:
        try:
            place.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=".export-", dir=place))
        except OSError:
            continue  # not writable: the next place
        try:
            return _export(model_dir, work, place / file_name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    raise ConfigError(f"cannot write the int8 ONNX embedder anywhere: tried {', '.join(map(str, places))}")


def fingerprint(model_dir: Path) -> str:
    """Changes when the model's files (or the recipe) change."""
    digest = hashlib.sha256(RECIPE.encode())
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file() and "onnx" not in p.parts):
        st = path.stat()
        digest.update(f"{path.relative_to(model_dir)}:{st.st_size}:{int(st.st_mtime)}\n".encode())
    return digest.hexdigest()[:12]


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rag" / "onnx"


def _export(model_dir: Path, work: Path, target: Path) -> Path:
    logger.info("embedder: exporting %s to int8 ONNX, once, into %s", model_dir.name, target.parent)
    t0 = time.perf_counter()
    fp32 = work / "model.onnx"
    _export_fp32(model_dir, fp32)
    exported = time.perf_counter() - t0
    partial = work / "model_int8.onnx"
    _quantize(fp32, partial)
    os.replace(partial, target)  # atomic: a reader sees no file or the whole file
    logger.info(
        "embedder: int8 ONNX ready export_s=%.1f quantize_s=%.1f path=%s",
        exported, time.perf_counter() - t0 - exported, target,
    )  # fmt: skip
    return target


def _export_fp32(model_dir: Path, out: Path) -> None:
    ensure_offline()
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    try:
        model = SentenceTransformer(str(model_dir), device="cpu").eval()
    except Exception as exc:  # the library raises many kinds; one line for the user
        raise ConfigError(f"cannot load embedder {model_dir} to export it: {exc}") from exc
    names = list(model.tokenizer.model_input_names)

    class Whole(torch.nn.Module):
        """The model's modules as one function of the tokenizer's tensors."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: Any) -> Any:
            return self.model(dict(zip(names, tensors, strict=True)))[OUTPUT]

    sample = model.tokenizer(["a short text", "a somewhat longer text to export"], padding=True,
                             return_tensors="pt")  # fmt: skip
    axes = {name: {0: "batch", 1: "tokens"} for name in names}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shapes taken as constants
        torch.onnx.export(
            Whole(), tuple(sample[n] for n in names), str(out), input_names=names,
            output_names=[OUTPUT], dynamic_axes={**axes, OUTPUT: {0: "batch"}},
            opset_version=17, dynamo=False,
        )  # fmt: skip


def _quantize(fp32: Path, out: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Per-channel weight scales keep the vectors within about 0.006 of fp32 in cosine (one
    # scale per tensor loses several times more). The feed-forward output projections
    # read the GELU's activations, whose outliers one int8 scale per batch cannot hold:
    # kept in fp32 they halve the remaining error (0.0026 in cosine on SciFact abstracts).
    graph = onnx.load(str(fp32), load_external_data=False).graph
    keep = [n.name for n in graph.node if n.op_type == "MatMul" and _ffn_output(n.name)]
    root = logging.getLogger()
    quiet = _Quiet()
    root.addFilter(quiet)  # it logs each tensor it skips, and advice for static quantization
    try:
        quantize_dynamic(str(fp32), str(out), per_channel=True, weight_type=QuantType.QInt8,
                         nodes_to_exclude=keep)  # fmt: skip
    finally:
        root.removeFilter(quiet)


def _ffn_output(node: str) -> bool:
    """A transformer layer's feed-forward output projection (BERT names: `output/dense`,
    not `attention/output/dense`)."""
    return "/output/dense/" in node and "/attention/" not in node


class _Quiet(logging.Filter):
    """Drops what the quantizer logs on the root logger; real errors raise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR
