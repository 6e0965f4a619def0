"""The OpenVINO embedder: the same sentence-transformers model, not quantized, on OpenVINO.

On a CPU that computes in bfloat16 (AVX-512 BF16 or AMX) OpenVINO runs the fp32 model in
bf16: about 1.5 times the throughput of the int8 onnx embedder on 2 cores, with vectors
within 0.00002 of torch fp32 in cosine (int8: about 0.001). Elsewhere it runs in fp32,
slower than int8 onnx. The precision is part of the name an index records
(`<model>-openvino-bf16` or `-f32`), so an index is never mixed.

The model is exported to ONNX (as for the onnx embedder) and converted to OpenVINO's own
format once, on first use, cached beside the model (or in the user cache), and reused.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag.embedders.base import resolve_embedder
from rag.embedders.graph import GraphEmbedder
from rag.embedders.onnx_export import EXPORT_VERSION, OUTPUT, cached, export_fp32, fingerprint
from rag.errors import ConfigError

if TYPE_CHECKING:
    from numpy.typing import NDArray

logger = logging.getLogger(__name__)

CONVERT_VERSION = 1  # changes when what is cached changes


class OpenVinoEmbedder(GraphEmbedder):
    """A local sentence-transformers model run by OpenVINO's CPU plugin, in bf16 where the
    CPU computes it, else fp32. One inference stream per thread: batches run at once, as
    the onnx embedder's do."""

    kind = "openvino"

    @classmethod
    def recorded_name(cls, model: str) -> str:
        """`<model>-openvino-<precision>`: the precision this CPU computes in (bf16, f32)."""
        return f"{resolve_embedder(model)[0]}-openvino-{precision()}"

    def _load(self, path: Path) -> Path:
        core = _core()
        folder = ir_model(path)
        config = {
            "PERFORMANCE_HINT": "THROUGHPUT",
            "NUM_STREAMS": str(self.threads),
            "INFERENCE_NUM_THREADS": str(self.threads),
            "INFERENCE_PRECISION_HINT": precision(),
        }
        try:
            self._compiled = core.compile_model(core.read_model(str(folder / "model.xml")), "CPU", config)
        except Exception as exc:  # a damaged cache, an unsupported operation
            raise ConfigError(f"cannot load the OpenVINO embedder {folder}: {exc}") from exc
        self._inputs = [i.get_any_name() for i in self._compiled.inputs]
        self._output = self._compiled.output(OUTPUT)
        self.dimension = int(self._output.get_partial_shape()[-1].get_length())
        self._requests = threading.local()  # an infer request serves one thread at a time
        return folder

    def _forward(self, feed: dict[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self._compiled.create_infer_request()
        result = request.infer({name: feed[name] for name in self._inputs})[self._output]
        return np.array(result, dtype=np.float32)  # a copy: the request's buffer is reused


@lru_cache(maxsize=1)
def _core() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise ConfigError("embedder.kind = openvino needs the openvino package (pip install it)") from exc
    return openvino.Core()


@lru_cache(maxsize=1)
def precision() -> str:
    """`bf16` when this CPU computes in bfloat16, else `f32`."""
    return "bf16" if "BF16" in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES") else "f32"


def ir_model(model_dir: Path) -> Path:
    """The folder holding the model of `model_dir` in OpenVINO's format (model.xml and
    model.bin), converted on first use (about ten seconds), then reused."""
    return cached(
        model_dir,
        f"openvino-{_fingerprint(model_dir)}",
        "the OpenVINO embedder",
        lambda work, target: _convert(model_dir, work, target),
    )


def _fingerprint(model_dir: Path) -> str:
    import openvino

    return fingerprint(model_dir, f"{EXPORT_VERSION}:{CONVERT_VERSION}:{openvino.__version__}")


def _convert(model_dir: Path, work: Path, target: Path) -> Path:
    import openvino

    logger.info("embedder: converting %s to OpenVINO, once, into %s", model_dir.name, target.parent)
    t0 = time.perf_counter()
    export_fp32(model_dir, work / "model.onnx")
    done = work / "ir"
    done.mkdir()
    # fp32 weights kept: the CPU plugin computes in bf16 itself where it can.
    openvino.save_model(
        openvino.convert_model(str(work / "model.onnx")), str(done / "model.xml"), compress_to_fp16=False
    )
    try:
        done.rename(target)  # atomic: a reader sees no folder or the whole folder
    except OSError:
        if not (target / "model.xml").is_file():  # not another process that got there first
            raise
    logger.info("embedder: OpenVINO model ready in %.1f s path=%s", time.perf_counter() - t0, target)
    return target
