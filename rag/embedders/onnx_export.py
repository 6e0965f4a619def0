"""A sentence-transformers folder exported to ONNX and quantized to int8, once, cached.

The first use exports the whole model (transformer, pooling, normalization) with torch's
ONNX exporter and quantizes it by a recipe (`RECIPES`, `DEFAULT_RECIPE`): by default,
the activation outliers moved into the weights (SmoothQuant), then onnxruntime's dynamic
quantization, weights per channel; later uses find the file. Nothing is fetched: the export reads only the
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import ConfigError
from rag.offline import ensure_offline

logger = logging.getLogger(__name__)

#: The recipe new exports use (one of `RECIPES`).
DEFAULT_RECIPE = "smooth50-ffnout"
#: Bumped when the export itself changes, so old files and indexes are not taken for new.
EXPORT_VERSION = 3
OUTPUT = "sentence_embedding"


def recipe_id(name: str | None = None) -> str:
    """`int8-<recipe>-<hash>`: names the recipe and changes with any of its parameters, its
    calibration texts or the export, so that an index records which int8 vectors it holds."""
    name = name or DEFAULT_RECIPE
    recipe = RECIPES[name]
    calibrated = CALIBRATION if recipe.smooth else ()  # the texts decide the factors too
    digest = hashlib.sha256(f"{EXPORT_VERSION}:{recipe!r}:{calibrated!r}".encode()).hexdigest()[:6]
    return f"int8-{name}-{digest}"


def int8_model(model_dir: Path) -> Path:
    """The int8 ONNX file of the sentence-transformers model in `model_dir`, exported and
    quantized on first use (about ten seconds), then reused."""
    return cached(
        model_dir,
        f"model_int8-{fingerprint(model_dir)}.onnx",
        "the int8 ONNX embedder",
        lambda work, target: _export(model_dir, work, target),
    )


def cached(model_dir: Path, name: str, what: str, make: Callable[[Path, Path], Path]) -> Path:
    """`name` in the cache of the model in `model_dir`: beside the model (its `onnx`
    folder), else in the user cache. Made when in neither, by `make(work, target)`, which
    works in the temporary folder `work` and moves its result to `target` at once."""
    places = [model_dir / "onnx", user_cache_dir() / model_dir.resolve().name]
    for place in places:
        if (place / name).exists():
            return place / name
    for place in places:
        try:
            place.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=".export-", dir=place))
        except OSError:
            continue  # not writable: the next place
        try:
            return make(work, place / name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    raise ConfigError(f"cannot write {what} anywhere: tried {', '.join(map(str, places))}")


def fingerprint(model_dir: Path, salt: str | None = None) -> str:
    """Changes when the model's files change, or `salt` (default: the int8 recipe)."""
    digest = hashlib.sha256((recipe_id() if salt is None else salt).encode())
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
    export_fp32(model_dir, fp32)
    exported = time.perf_counter() - t0
    partial = work / "model_int8.onnx"
    quantize(fp32, partial, model_dir=model_dir)
    os.replace(partial, target)  # atomic: a reader sees no file or the whole file
    logger.info(
        "embedder: int8 ONNX ready export_s=%.1f quantize_s=%.1f path=%s",
        exported,
        time.perf_counter() - t0 - exported,
        target,
    )
    return target


def export_fp32(model_dir: Path, out: Path) -> None:
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

    sample = model.tokenizer(
        ["a short text", "a somewhat longer text to export"], padding=True, return_tensors="pt"
    )
    axes = {name: {0: "batch", 1: "tokens"} for name in names}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shapes taken as constants
        torch.onnx.export(
            Whole(),
            tuple(sample[n] for n in names),
            str(out),
            input_names=names,
            output_names=[OUTPUT],
            dynamic_axes={**axes, OUTPUT: {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


@dataclass(frozen=True)
class Recipe:
    """How the fp32 export becomes int8.

    `method`: `dynamic` (onnxruntime's dynamic quantization: int8 weights, activations
    quantized with one scale per batch), `nbits` (MatMulNBits with 8-bit weights in blocks
    of `block_size`; `accuracy_level` 4 quantizes the activations to int8 per block too,
    far finer than one scale per batch) or `nbits4` (the same, 4-bit weights). `keep`: the
    kinds of weight MatMul left in fp32 (`ffn_out`, `ffn_in`, `attn_out`, `qkv`).
    `smooth`: the exponent of SmoothQuant's migration (0: none): each quantized MatMul's
    input channels are divided by a factor its weight rows are multiplied by, the same
    function in fp32, so that the few channels whose activations run far larger than the
    others (outliers that one int8 scale per batch cannot hold) no longer set the scale;
    calibrated on `CALIBRATION`."""

    method: str = "dynamic"
    keep: tuple[str, ...] = ()
    per_channel: bool = True
    reduce_range: bool = False
    block_size: int = 32
    accuracy_level: int = 4
    symmetric: bool = True
    smooth: float = 0.0


RECIPES: dict[str, Recipe] = {
    "dynamic-all": Recipe(),
    "dynamic-ffnout": Recipe(keep=("ffn_out",)),
    "dynamic-ffn": Recipe(keep=("ffn_out", "ffn_in")),
    "dynamic-ffnout-tensor": Recipe(keep=("ffn_out",), per_channel=False),
    "smooth50-ffnout": Recipe(keep=("ffn_out",), smooth=0.5),
    "smooth50-all": Recipe(smooth=0.5),
    "smooth75-all": Recipe(smooth=0.75),
    "smooth75-ffnout": Recipe(keep=("ffn_out",), smooth=0.75),
    "smooth35-ffnout": Recipe(keep=("ffn_out",), smooth=0.35),
    "nbits8-b32": Recipe(method="nbits", block_size=32),
    "nbits8-b128": Recipe(method="nbits", block_size=128),
    "nbits4-b32": Recipe(method="nbits4", block_size=32),
}

#: Texts the smoothing factors are calibrated on: which channels carry outliers is a
#: property of the model more than of the text, so a few varied passages suffice.
CALIBRATION = (
    "Cats are small carnivorous mammals that sleep about sixteen hours a day.",
    "Mount Etna is an active volcano on the east coast of Sicily, the highest in Europe.",
    "To reset the router, hold the button for ten seconds until the light turns orange.",
    "The court held that the contract was void because the seller had concealed the defect.",
    "Patients receiving 40 mg daily showed a 23% reduction in LDL cholesterol (p < 0.01).",
    "pip install --upgrade package; then run `make test` and check the coverage report.",
    "La résiliation du contrat doit être notifiée par lettre recommandée avec accusé de réception.",
    "What do cats eat?",
    "Quarterly revenue rose to $4.2 billion, driven by subscriptions in Asia and Europe.",
    "The enzyme phosphorylates the receptor, which activates the downstream signalling cascade.",
    "def embed(texts): return model.encode(texts, normalize_embeddings=True)",
    "Sourdough bread rises with a starter of wild yeast; knead, rest two hours, bake at 230 C.",
    "In 1848 revolutions spread across Europe, from Paris to Vienna, Berlin and Budapest.",
    "Error 503: the service is temporarily unavailable. Retry after a few seconds.",
    "Die Kündigung muss schriftlich erfolgen und wird zum Monatsende wirksam.",
    "Table 2. Baseline characteristics: age 54 ± 11 years, 61% women, BMI 27.3 kg/m2.",
)


def quantize(fp32: Path, out: Path, name: str | None = None, model_dir: Path | None = None) -> None:
    """`fp32` quantized by recipe `name` (default: `DEFAULT_RECIPE`) into `out`;
    `model_dir` (the tokenizer) is needed by recipes that calibrate."""
    recipe = RECIPES[name or DEFAULT_RECIPE]
    root = logging.getLogger()
    quiet = _Quiet()
    root.addFilter(quiet)  # the quantizers log each tensor they skip, and advice
    try:
        source = fp32
        if recipe.smooth:
            if model_dir is None:
                raise ValueError("a smoothing recipe needs the model folder, for its tokenizer")
            source = out.with_name(out.stem + "-smoothed.onnx")
            _smooth(fp32, source, recipe, model_dir)
        if recipe.method in ("nbits", "nbits4"):
            _nbits(source, out, recipe)
        else:
            _dynamic(source, out, recipe)
    finally:
        root.removeFilter(quiet)


def _smooth(fp32: Path, out: Path, recipe: Recipe, model_dir: Path) -> None:
    """SmoothQuant's migration on the MatMuls the recipe quantizes: x W = (x / s) (s W),
    s_j = max|x_j|^a / max|W_j|^(1-a), the division one fp32 Mul per input tensor."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(fp32))
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    groups: dict[str, list[Any]] = {}  # the MatMuls reading each activation (Q, K and V share one)
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in weights and _part(node.name) not in recipe.keep:
            groups.setdefault(node.input[0], []).append(node)
    maxima = _activation_maxima(model, list(groups), model_dir)
    muls = {}
    for x, nodes in groups.items():
        ws = [numpy_helper.to_array(weights[n.input[1]]) for n in nodes]
        w_max = np.max([np.abs(w).max(axis=1) for w in ws], axis=0)
        s = np.maximum(maxima[x], 1e-5) ** recipe.smooth / np.maximum(w_max, 1e-5) ** (1 - recipe.smooth)
        s = s.astype(np.float32)
        graph.initializer.append(numpy_helper.from_array((1 / s).astype(np.float32), f"{x}/smooth"))
        muls[x] = helper.make_node("Mul", [x, f"{x}/smooth"], [f"{x}/smoothed"], name=f"{x}/smooth/Mul")
        for node, w in zip(nodes, ws, strict=True):
            weights[node.input[1]].CopyFrom(numpy_helper.from_array(w * s[:, None], node.input[1]))
            node.input[0] = f"{x}/smoothed"
    ordered = []  # each Mul right after the node that makes its input: the graph stays sorted
    for node in graph.node:
        ordered.append(node)
        ordered.extend(muls[o] for o in node.output if o in muls)
    del graph.node[:]
    graph.node.extend(ordered)
    onnx.save(model, str(out))


def _activation_maxima(model: Any, tensors: list[str], model_dir: Path) -> dict[str, Any]:
    """Each tensor's largest magnitude per channel (last axis) over `CALIBRATION`."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from transformers import AutoTokenizer

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(
        onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None) for t in tensors
    )
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    maxima: dict[str, Any] = {}
    for start in range(0, len(CALIBRATION), 8):
        texts = list(CALIBRATION[start : start + 8])
        batch = tokenizer(texts, padding=True, truncation=True, return_tensors="np")
        values = session.run(tensors, {n: batch[n].astype(np.int64) for n in names})
        for t, v in zip(tensors, values, strict=True):
            m = np.abs(v).reshape(-1, v.shape[-1]).max(axis=0)
            maxima[t] = np.maximum(maxima[t], m) if t in maxima else m
    return maxima


def _kept(graph: Any, recipe: Recipe) -> list[str]:
    weights = {i.name for i in graph.initializer}
    return [
        n.name
        for n in graph.node
        if n.op_type == "MatMul" and any(i in weights for i in n.input) and _part(n.name) in recipe.keep
    ]


def _dynamic(fp32: Path, out: Path, recipe: Recipe) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fp32), load_external_data=False).graph
    quantize_dynamic(
        str(fp32),
        str(out),
        per_channel=recipe.per_channel,
        reduce_range=recipe.reduce_range,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=_kept(graph, recipe),
    )


def _nbits(fp32: Path, out: Path, recipe: Recipe) -> None:
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    model = onnx.load(str(fp32))
    quantizer = MatMulNBitsQuantizer(
        model,
        bits=4 if recipe.method == "nbits4" else 8,
        block_size=recipe.block_size,
        is_symmetric=recipe.symmetric,
        accuracy_level=recipe.accuracy_level,
        nodes_to_exclude=_kept(model.graph, recipe),
    )
    quantizer.process()
    onnx.save(quantizer.model.model, str(out))


def _part(node: str) -> str:
    """Which weight MatMul of a BERT layer a node is, by the exporter's names."""
    if "/attention/output/dense/" in node:
        return "attn_out"
    if "/output/dense/" in node:
        return "ffn_out"
    if "/intermediate/dense/" in node:
        return "ffn_in"
    if "/attention/self/" in node:
        return "qkv"
    return "other"


class _Quiet(logging.Filter):
    """Drops what the quantizer logs on the root logger; real errors raise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR
