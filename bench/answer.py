"""Answer benchmark: where the time of a question goes, against raw llama-cpp-python.

For 20 questions over an index of docs/, prints the time spent embedding the question,
searching, building the prompt and generating, and compares tokens/s with raw
llama-cpp-python generating from the very same final prompts in the same process.

    python bench/answer.py [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path[0] = str(ROOT)  # not bench/, whose ingest.py would shadow ingest/

from rag.offline import ensure_offline

ensure_offline()
from ingest.worker import IngestWorker
from rag.config import load_settings
from rag.generators.base import GenerationParams
from rag.generators.llama_cpp import LlamaCppGenerator
from rag.hardware import processor_line
from rag.pipeline import DoneEvent, Pipeline
from rag.retrievers.dense import DenseRetriever

QUESTIONS = [
    "How do I ingest a folder of documents?",
    "Which file types can be ingested?",
    "What happens when a PDF is encrypted?",
    "How do I change the chunk size?",
    "Which environment variable sets the context size?",
    "How do I start the HTTP server?",
    "How can an OpenAI client talk to the service?",
    "What does the /health route return?",
    "How are API keys configured?",
    "What does re-running ingest do with unchanged files?",
    "Where are indexes stored?",
    "What is in the index manifest?",
    "How are sources cited in answers?",
    "What happens when the question is too long?",
    "Which embedding model is the default?",
    "Which language model is used by default?",
    "How do I delete an index?",
    "What does rag config print?",
    "What error does an unknown model name give?",
    "How does streaming work on /ask?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    print(processor_line())
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(overrides={"indexes_dir": tmp, "llm.temperature": 0.0, "llm.seed": 1})
        pipeline = Pipeline.from_settings(settings)  # one torch thread, as `rag serve`
        IngestWorker(settings, pipeline.embedder).run(ROOT / "docs")
        generator: LlamaCppGenerator = pipeline.generator  # type: ignore[assignment]
        params = GenerationParams.from_settings(settings.llm).with_overrides(max_tokens=args.max_tokens)
        pipeline.ask("warm-up", params=params)
        rows = [run_one(pipeline, q, params) for q in QUESTIONS]
        raw = [run_raw(generator, row["prompt_tokens"], row["stop"], params) for row in rows]

    def total(key: str) -> float:
        return sum(float(r[key]) for r in rows)

    outside = total("embed") + total("search") + total("prompt") + total("other")
    overall = outside + total("generate")
    ours_tps = sum(int(r["tokens"]) for r in rows) / total("generate")
    raw_tps = sum(t for t, _ in raw) / sum(s for _, s in raw)
    print(f"questions              {len(rows)}, max_tokens {args.max_tokens}")
    for key in ("embed", "search", "prompt", "generate", "other"):
        median_ms = statistics.median(float(r[key]) for r in rows) * 1000
        print(f"{key:<22} {total(key):8.3f} s   median {median_ms:8.1f} ms")
    print(f"outside llama.cpp      {100 * outside / overall:.2f}% of total (target <= 5%)")
    print(f"prompt tokens (median) {statistics.median(len(r['prompt_tokens']) for r in rows):.0f}")
    print(f"tokens/s pipeline      {ours_tps:.1f}")
    print(f"tokens/s raw llama     {raw_tps:.1f}")
    print(f"ratio                  {ours_tps / raw_tps:.3f} (target >= 0.95)")


def run_one(pipeline: Pipeline, question: str, params: GenerationParams) -> dict[str, object]:
    start = time.perf_counter()
    index = pipeline.index()
    retriever: DenseRetriever = pipeline.retriever  # type: ignore[assignment]
    t0 = time.perf_counter()
    vector = pipeline.embedder.embed_query(question)
    t1 = time.perf_counter()
    hits = retriever.search(index, vector, pipeline.settings.retrieval.top_k)
    t2 = time.perf_counter()
    prompt = pipeline.prompts.build(question, hits, max_tokens=params.max_tokens)
    t3 = time.perf_counter()
    from rag.pipeline import Prepared

    prepared = Prepared(prompt, params, bool(hits))
    gen_time, tokens = 0.0, 0
    for event in pipeline.generate(prepared):
        if isinstance(event, DoneEvent):
            gen_time = event.answer.timings["generate"]
            tokens = event.answer.usage.completion_tokens
    end = time.perf_counter()
    generator: LlamaCppGenerator = pipeline.generator  # type: ignore[assignment]
    rendered = generator.render(prompt.messages)  # as generation read it
    return {
        "embed": t1 - t0,
        "search": t2 - t1,
        "prompt": t3 - t2,
        "generate": gen_time,
        "other": (end - start) - (t3 - t0) - gen_time,
        "tokens": tokens,
        "prompt_tokens": rendered.tokens,
        "stop": rendered.stop,
    }


def run_raw(
    generator: LlamaCppGenerator, tokens: list[int], stop: list[str], params: GenerationParams
) -> tuple[int, float]:
    llm = generator.llm

    def run() -> tuple[int, float]:  # on the thread that drives llama.cpp, as the pipeline
        llm.set_seed(1)
        t0 = time.perf_counter()
        n = 0
        for chunk in llm.create_completion(
            prompt=tokens,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            stop=stop,
            stream=True,
            repeat_penalty=params.repeat_penalty,
        ):
            if chunk["choices"][0]["text"]:  # type: ignore[index]
                n += 1
        return n, time.perf_counter() - t0

    result: tuple[int, float] = generator.run(run)
    return result


if __name__ == "__main__":
    main()
