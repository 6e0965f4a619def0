"""Models side by side: the same questions, the same retrieval, each model in turn.

    report = compare_models(settings, dataset, workdir, options, ["A", "B"])

Each model gets one normal run (saved like any other, so `rag eval --compare` works on any
two of them); the corpus is ingested once and retrieval is the same for all. Besides the
answer metrics, each model's speed is measured on this machine: time to first token,
generation and prompt tokens per second, and the peak resident memory of the process
while it answered.
"""

from __future__ import annotations

import json
import logging
import statistics
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.generators.gguf_catalog import ModelCatalog
from rag_eval.chart import quality_latency_page
from rag_eval.datasets import Dataset, DatasetError
from rag_eval.metrics import ANSWER_METRICS, GROUNDING_METRICS
from rag_eval.runner import Progress, RunOptions, run

logger = logging.getLogger(__name__)

#: The quality axis of the chart: the first of these the runs have.


@dataclass
class ModelResult:
    name: str
    quantization: str
    file_size: int
    ram_estimate: int
    run: dict[str, Any]
    speed: dict[str, float | None] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        metrics = {k: v for k, v in self.run["metrics"].items() if k in (*ANSWER_METRICS, *GROUNDING_METRICS)}
        return {
            "model": self.name,
            "quantization": self.quantization,
            "file_size": self.file_size,
            "ram_estimate": self.ram_estimate,
            "run": self.run["id"],
            "path": self.run["path"],
            "metrics": metrics,
            "speed": self.speed,
        }


def compare_models(
    settings: Settings,
    dataset: Dataset,
    workdir: Path,
    options: RunOptions,
    models: list[str],
    on_query: Progress | None = None,
) -> dict[str, Any]:
    """Run the dataset through each model; the comparison, also saved under workdir/models."""
    if len(models) < 1:
        raise DatasetError("give at least one model to --models")
    catalog = ModelCatalog(settings.llm)
    names = [catalog.resolve(m) for m in models]  # every name checked before any run
    results: list[ModelResult] = []
    for name in names:
        info = catalog.info(name)
        llm = catalog.settings_for(name)
        chosen = settings.model_copy(update={"llm": llm})
        logger.info("evaluating model=%s n_ctx=%s", name, llm.n_ctx)
        with peak_rss() as peak:
            # The corpus is ingested for the first model; the others read the same index.
            again = RunOptions(options.limit, True, options.progress, ingest=not results)
            record = run(chosen, dataset, workdir, again, on_query)
        speed = speed_of(record["queries"])
        speed["peak_rss_mib"] = round(peak.value / 2**20, 1)
        results.append(
            ModelResult(
                name, info.quantization, info.file_size, info.ram_bytes(llm.n_ctx or 0), record, speed
            )
        )
    report = {
        "dataset": results[0].run["dataset"],
        "created": results[0].run["created"],
        "models": [r.row() for r in results],
    }
    folder = workdir / "models"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{results[0].run['id']}-models"
    chart = folder / f"{stem}.html"
    chart.write_text(quality_latency_page(report), encoding="utf-8")
    report["chart"] = str(chart.resolve())
    saved = folder / f"{stem}.json"
    saved.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    report["path"] = str(saved.resolve())
    return report


def speed_of(queries: list[dict[str, Any]]) -> dict[str, float | None]:
    """Medians over the answers the model generated (refusals without a model call left out).

    Prompt tokens per second is the prompt's length over the time to the first token: the
    prompt's evaluation, plus one token's decoding."""
    ttft, total, gen, prompt = [], [], [], []
    for q in queries:
        t, usage = q.get("timings", {}), q.get("usage", {})
        first, whole = t.get("first_token"), t.get("generate")
        if first is None or whole is None or not usage.get("completion"):
            continue
        ttft.append(first)
        total.append(whole)
        if first > 0:
            prompt.append(usage["prompt"] / first)
        if usage["completion"] > 1 and whole > first:
            gen.append((usage["completion"] - 1) / (whole - first))

    def median(values: list[float], digits: int) -> float | None:
        return round(statistics.median(values), digits) if values else None

    return {
        "ttft_s": median(ttft, 4),
        "answer_s": median(total, 4),
        "gen_tokens_per_s": median(gen, 1),
        "prompt_tokens_per_s": median(prompt, 1),
        "answers_timed": float(len(ttft)),
    }


class _Peak:
    value = 0


@contextmanager
def peak_rss(interval: float = 0.05) -> Iterator[_Peak]:
    """The largest resident set size of this process while the block runs."""
    import psutil

    process, peak, stop = psutil.Process(), _Peak(), threading.Event()
    peak.value = process.memory_info().rss

    def sample() -> None:
        while not stop.wait(interval):
            peak.value = max(peak.value, process.memory_info().rss)

    thread = threading.Thread(target=sample, name="peak-rss", daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()
        peak.value = max(peak.value, process.memory_info().rss)
