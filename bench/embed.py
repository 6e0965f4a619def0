"""Embedding benchmark: int8 ONNX and OpenVINO against torch fp32 on the same chunks, in one run.

    python bench/embed.py [--files 300] [--corpus DIR] [--rounds 2]

1. Ingests the corpus with the configured ONNX embedder (wall time), then embeds exactly
   the texts that ingest embedded with that embedder alone: its floor (one cold run, with
   the other embedders loaded beside it; bench/ingest.py compares the two properly).
2. Embedding throughput of torch fp32, int8 ONNX and OpenVINO (bf16 where the CPU
   computes it, else fp32) on those texts, rounds interleaved (torch, onnx, openvino,
   torch...) so a machine shared with other jobs slows all alike; chunks/s and word
   pieces/s, medians of the rounds.
3. Padding: the share of padded tokens in batches of 64 texts in corpus order, in
   sentence-transformers' own batches (sorted by characters) and in the token-budget
   batches (sorted by word pieces, `embedder.batch_tokens`).
4. Peak RSS of embedding the longest chunks in batches of 64, of 10 and by token budget,
   each in a child process of its own: its growth over the loaded model (VmHWM, reset
   after loading, less VmRSS then).

Without --corpus, the first N Markdown, HTML and text files of /usr/share/doc and the
repository's docs/ are copied to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[0] = str(Path(__file__).parents[1])  # not bench/, whose ingest.py would shadow ingest/

from rag.offline import ensure_offline

ensure_offline()
from ingest.worker import IngestWorker
from rag.config import EmbedderSettings, load_settings
from rag.embedders import make_embedder
from rag.embedders.base import Embedder, token_batches
from rag.hardware import processor_line
from rag.store import make_catalog

REPO = Path(__file__).parents[1]


def copy_corpus(target: Path, n: int) -> Path:
    found = sorted(
        p for p in Path("/usr/share/doc").rglob("*") if p.is_file() and p.suffix in (".md", ".html", ".txt")
    )
    for i, path in enumerate([*sorted((REPO / "docs").glob("*.md")), *found][:n]):
        shutil.copyfile(path, target / f"{i:04d}-{path.name}")
    return target


def padding_share(lengths: list[int], batches: list[list[int]]) -> float:
    slots = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - sum(lengths) / slots


def fixed_batches(order: list[int], size: int) -> list[list[int]]:
    return [order[i : i + size] for i in range(0, len(order), size)]


def timed(embedder: Embedder, texts: list[str]) -> float:
    t0 = time.perf_counter()
    embedder.embed(texts)
    return time.perf_counter() - t0


def child_rss(kind: str, batch_size: int, batch_tokens: int, texts_file: Path) -> dict[str, float]:
    """Peak RSS growth and seconds of one embedding run, in a fresh process."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(batch_size), str(batch_tokens), str(texts_file)],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def child(kind: str, batch_size: int, batch_tokens: int, texts_file: Path) -> None:
    texts = json.loads(texts_file.read_text())
    embedder = make_embedder(EmbedderSettings(kind=kind, batch_size=batch_size, batch_tokens=batch_tokens))
    embedder.embed(texts[:2])
    # ru_maxrss survives fork and exec (it would be the parent's peak): read the kernel's
    # high-water mark of this process instead, reset once the model is loaded.
    Path("/proc/self/clear_refs").write_text("5")
    base = _status_mb("VmRSS")
    seconds = timed(embedder, texts)
    peak = _status_mb("VmHWM")
    print(json.dumps({"growth_mb": peak - base, "peak_mb": peak, "seconds": seconds}))


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300, help="Files copied into the corpus.")
    parser.add_argument("--corpus", type=Path, help="A folder to ingest instead.")
    parser.add_argument("--rounds", type=int, default=2, help="Interleaved throughput rounds.")
    parser.add_argument("--rss-texts", type=int, default=640, help="Longest chunks in the RSS runs.")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]), Path(args.child[3]))
        return
    print(processor_line())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.corpus is None:
            (work / "corpus").mkdir()
        corpus = args.corpus or copy_corpus(work / "corpus", args.files)
        settings = load_settings(overrides={"indexes_dir": str(work / "indexes"), "embedder.kind": "onnx"})
        onnx = make_embedder(settings.embedder)
        torch = make_embedder(settings.embedder.model_copy(update={"kind": "sentence-transformers"}))
        openvino = make_embedder(settings.embedder.model_copy(update={"kind": "openvino"}))
        for e in (onnx, torch, openvino):
            e.embed(["warm-up"] * 8)

        t0 = time.perf_counter()
        report = IngestWorker(settings, onnx).run(corpus)
        ingest_s = time.perf_counter() - t0
        index = make_catalog(settings).open("default", readonly=True)
        texts = [c.context if settings.chunking.context else c.text for _, c in index.all_chunks()]
        index.close()
        floor_s = timed(onnx, texts)

        lengths = [min(n, onnx.max_tokens) for n in onnx.count_tokens_batch(texts)]
        pieces = sum(lengths)
        ov_label = f"openvino {openvino.name.rsplit('-', 1)[-1]}"
        seconds: dict[str, list[float]] = {"torch fp32": [], "onnx int8": [], ov_label: []}
        for _ in range(args.rounds):
            seconds["torch fp32"].append(timed(torch, texts))
            seconds["onnx int8"].append(timed(onnx, texts))
            seconds[ov_label].append(timed(openvino, texts))
        median = {k: statistics.median(v) for k, v in seconds.items()}

        corpus_order = fixed_batches(list(range(len(texts))), 64)
        by_chars = fixed_batches(sorted(range(len(texts)), key=lambda i: -len(texts[i])), 64)
        # The onnx embedder's batches: one per thread at once, sharing the budget.
        budget = settings.embedder.batch_tokens // getattr(onnx, "threads", 1)
        by_tokens = token_batches(lengths, budget, settings.embedder.batch_size)

        longest = sorted(texts, key=len, reverse=True)[: args.rss_texts]
        (work / "texts.json").write_text(json.dumps(longest))
        rss = {
            f"{kind} batch {size}{' + budget' if budget < 10**6 else ''}": child_rss(
                kind, size, budget, work / "texts.json"
            )
            for kind, size, budget in (
                ("sentence-transformers", 64, 10**9),
                ("sentence-transformers", 10, 10**9),
                ("sentence-transformers", 64, settings.embedder.batch_tokens),
                ("onnx", 64, 10**9),
                ("onnx", 64, settings.embedder.batch_tokens),
                ("openvino", 64, settings.embedder.batch_tokens),
            )
        }

    files = report.count("added")
    print(f"embedders             {onnx.kind}:{onnx.name} against {torch.kind}:{torch.name}")
    print(
        f"corpus                {files} files in, {report.count('failed')} failed, {len(texts)} chunks, "
        f"{pieces} word pieces embedded"
    )
    for kind, s in median.items():
        print(
            f"{kind:<21} {len(texts) / s:8.1f} chunks/s  {pieces / s:9.0f} word pieces/s  "
            f"(rounds: {', '.join(f'{x:.2f}' for x in seconds[kind])} s)"
        )
    print(f"int8 / fp32 speed     {median['torch fp32'] / median['onnx int8']:.2f}x  (target >= 2.3)")
    print(
        f"{ov_label} / fp32   {median['torch fp32'] / median[ov_label]:.2f}x; "
        f"/ int8 {median['onnx int8'] / median[ov_label]:.2f}x"
    )
    print(f"ingest wall time      {ingest_s:.2f} s  (onnx int8, {len(texts) / ingest_s:.1f} chunks/s)")
    print(f"embedding floor       {floor_s:.2f} s  (onnx int8 alone on the same texts)")
    print(
        f"ingest / floor        {ingest_s / floor_s:.3f}  (one cold first run, beside two other loaded "
        "embedders: bench/ingest.py measures the ingest against its floor)"
    )
    print(
        f"padded share          {padding_share(lengths, corpus_order):.1%} batches of 64 in corpus order, "
        f"{padding_share(lengths, by_chars):.1%} of 64 sorted by characters, "
        f"{padding_share(lengths, by_tokens):.1%} by token budget {budget}"
    )
    print(f"peak RSS              embedding the {len(longest)} longest chunks, each in a new process:")
    for name, r in rss.items():
        print(f"  {name:<40} +{r['growth_mb']:5.0f} MB (peak {r['peak_mb']:.0f} MB)  {r['seconds']:.2f} s")


if __name__ == "__main__":
    main()
