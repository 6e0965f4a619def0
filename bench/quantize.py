"""Quantization recipes for the ONNX embedder, compared on SciFact against torch fp32.

    python bench/quantize.py [--docs 2000] [--recipes a,b] [--sensitivity] [--speed]
                             [--model multilingual-e5-small-q4]

A quick proxy for `rag eval`: the passages relevant to SciFact's test queries plus others
drawn at random (`--docs` in all, title and abstract as one text), and the test queries.
Torch fp32 embeds them once (cached in --work); each recipe quantizes the fp32 ONNX export
and embeds them again. Per recipe: the mean and 1st percentile of the cosine between its
vectors and fp32's (passages and queries), nDCG@10 of dense retrieval over the subset for
both, and their difference.

`--sensitivity`: each weight MatMul quantized alone (dynamic, per channel), the others
fp32: the mean cosine it costs, most sensitive first.
`--speed`: passages/s of each recipe and of fp32 ONNX (a timed run: under the lock,
`flock /tmp/bench.lock python bench/quantize.py --speed ...`).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path[0] = str(Path(__file__).parents[1])  # not bench/, whose ingest.py would shadow ingest/

from rag.offline import ensure_offline

ensure_offline()
from rag.config import EmbedderSettings
from rag.embedders import make_embedder
from rag.embedders.base import resolve_embedder
from rag.embedders.onnx import OnnxEmbedder
from rag.embedders.onnx_export import RECIPES, export_fp32, quantize
from rag.hardware import processor_line

SCIFACT = Path(__file__).parents[2] / "shared" / "eval" / "scifact"


Loaded = tuple[list[str], list[str], list[str], dict[str, set[str]]]


def load(dataset: Path, n_docs: int, seed: int) -> Loaded:
    """Passage ids and texts, query texts, and each query's relevant passage ids."""
    qrels: dict[str, set[str]] = {}
    for line in (dataset / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, did, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(qid, set()).add(did)
    corpus = {}
    for line in (dataset / "corpus.jsonl").read_text().splitlines():
        row = json.loads(line)
        corpus[row["_id"]] = f"{row['title']}\n\n{row['text']}"
    relevant = sorted({d for ds in qrels.values() for d in ds})
    others = sorted(set(corpus) - set(relevant))
    random.Random(seed).shuffle(others)
    ids = relevant + others[: max(0, n_docs - len(relevant))]
    queries = {}
    for line in (dataset / "queries.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["_id"] in qrels:
            queries[row["_id"]] = row["text"]
    qids = sorted(queries, key=int)
    return ids, [corpus[i] for i in ids], [queries[q] for q in qids], {q: qrels[q] for q in qids}


def ndcg10(docs: np.ndarray, queries: np.ndarray, ids: list[str], qrels: dict[str, set[str]]) -> float:
    scores = queries @ docs.T
    total = 0.0
    for row, relevant in zip(scores, qrels.values(), strict=True):
        top = np.argsort(-row)[:10]
        dcg = sum(1 / math.log2(r + 2) for r, i in enumerate(top) if ids[i] in relevant)
        ideal = sum(1 / math.log2(r + 2) for r in range(min(10, len(relevant))))
        total += dcg / ideal
    return total / len(qrels)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(np.sum(a * b, axis=1), dtype=np.float64)


class Runner:
    """One tokenizer and batching (the product's), any ONNX file."""

    def __init__(self, model: str) -> None:
        self.embedder = OnnxEmbedder(EmbedderSettings(kind="onnx", model=model), threads=2)

    def use(self, model: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 2
        self.embedder.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embedder.embed(texts)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self.embedder.embed_queries(texts)


def reference(work: Path, docs: list[str], queries: list[str], model: str) -> tuple[np.ndarray, np.ndarray]:
    cache = work / f"fp32-{len(docs)}-{len(queries)}.npz"
    if cache.is_file():
        saved = np.load(cache)
        return saved["docs"], saved["queries"]
    torch = make_embedder(EmbedderSettings(kind="sentence-transformers", model=model), threads=2)
    d, q = torch.embed(docs), torch.embed_queries(queries)
    np.savez(cache, docs=d, queries=q)
    return d, q


def sensitivity(fp32: Path, work: Path, runner: Runner, texts: list[str], ref: np.ndarray) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fp32), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}
    nodes = [n.name for n in graph.node if n.op_type == "MatMul" and any(i in weights for i in n.input)]
    costs = []
    for node in nodes:
        out = work / "one.onnx"
        quantize_dynamic(
            str(fp32), str(out), per_channel=True, weight_type=QuantType.QInt8, nodes_to_quantize=[node]
        )
        runner.use(out)
        cos = cosines(runner.embed(texts), ref)
        costs.append((1 - float(cos.mean()), node))
        print(f"{costs[-1][0]:.5f}  {node}", flush=True)
    print("most sensitive first:")
    for cost, node in sorted(costs, reverse=True):
        print(f"{cost:.5f}  {node}")


def timed(runner: Runner, texts: list[str], rounds: int = 2) -> float:
    runner.embed(texts[:64])  # warm up
    best = math.inf
    for _ in range(rounds):
        t0 = time.perf_counter()
        runner.embed(texts)
        best = min(best, time.perf_counter() - t0)
    return len(texts) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--docs", type=int, default=2000, help="Passages in the subset.")
    parser.add_argument("--recipes", default=",".join(RECIPES), help="Comma-separated names.")
    parser.add_argument("--work", type=Path, default=Path("/tmp/quantize-bench"), help="Cache folder.")
    parser.add_argument("--sensitivity", action="store_true", help="Per-MatMul cosine cost.")
    parser.add_argument("--speed", action="store_true", help="Passages/s per recipe (timed: use the lock).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--model", default=EmbedderSettings().model, help="The embedder model (name or folder)."
    )
    args = parser.parse_args()
    print(processor_line())
    logging.basicConfig(level=logging.WARNING)
    args.work = args.work / Path(args.model).name  # each model its own exports and references
    args.work.mkdir(parents=True, exist_ok=True)

    ids, docs, queries, qrels = load(args.dataset, args.docs, args.seed)
    _, model_dir = resolve_embedder(args.model)
    fp32 = args.work / "fp32.onnx"
    if not fp32.is_file():
        export_fp32(model_dir, fp32)
    runner = Runner(args.model)
    if args.speed:
        sample = docs[:512]
        runner.use(fp32)
        print(f"fp32-onnx  {timed(runner, sample):.1f} passages/s")
        for name in args.recipes.split(","):
            out = args.work / f"{name}.onnx"
            quantize(fp32, out, name, model_dir)
            runner.use(out)
            print(f"{name}  {timed(runner, sample):.1f} passages/s")
        return
    ref_docs, ref_queries = reference(args.work, docs, queries, args.model)
    if args.sensitivity:
        sensitivity(fp32, args.work, runner, docs[:200], ref_docs[:200])
        return
    base = ndcg10(ref_docs, ref_queries, ids, qrels)
    print(f"docs={len(docs)} queries={len(queries)} fp32 nDCG@10={base:.4f}")
    print("recipe                         doc_cos   doc_p1    query_cos  nDCG@10  delta")
    for name in args.recipes.split(","):
        out = args.work / f"{name}.onnx"
        t0 = time.perf_counter()
        quantize(fp32, out, name, model_dir)
        quantized = time.perf_counter() - t0
        runner.use(out)
        d, q = runner.embed(docs), runner.embed_queries(queries)
        dc, qc = cosines(d, ref_docs), cosines(q, ref_queries)
        score = ndcg10(d, q, ids, qrels)
        print(
            f"{name:30s} {dc.mean():.5f}  {np.percentile(dc, 1):.5f}  {qc.mean():.5f}    "
            f"{score:.4f}   {score - base:+.4f}  (quantize {quantized:.0f}s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
