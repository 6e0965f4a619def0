"""Decoding benchmark: faster answers from the same model, with the same greedy output.

Over an index of docs/architecture.md (--docs), with the packaged model (or --model NAME):

- prompt lookup: each question's grounded prompt is answered greedily by one model with
  prompt lookup off and on (`llm.prompt_lookup`); the answers must be identical (checked
  and printed for every question), and decode tokens/s, with the drafts' acceptance, are
  printed, beside the model as loaded without lookup;
- prefix reuse: a question, then a follow-up in the same conversation. The follow-up's time
  to first token right after the first turn (llama.cpp keeps the longest common token
  prefix of its previous prompt) is compared with the same prompt on a cleared context
  (a cold question of the same length); passages the first turn gave are not repeated;
- batch cost: what reading a batch of k tokens costs against one token, with and without
  the settings prompt lookup runs with (flash attention, decoding on one thread);
- --ram: the resident memory of the model loaded at a few n_ctx, against the estimate
  `rag models list` prints (each in a fresh process).

    python bench/decoding.py [--questions 6] [--max-tokens 96] [--lookup 10] [--ram]
                             [--only lookup|prefix|batch]
    RAG_LLM__MODELS_DIR=/tmp/models python bench/decoding.py --model NAME  # another models folder
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path[0] = str(ROOT)  # not bench/, whose ingest.py would shadow ingest/

from rag.offline import ensure_offline

ensure_offline()
from ingest.worker import IngestWorker
from rag.config import Settings, load_settings
from rag.generators.base import GenerationParams, Generator, Message
from rag.generators.gguf import read_gguf
from rag.generators.gguf_catalog import ModelCatalog
from rag.generators.llama_cpp import LlamaCppGenerator
from rag.generators.lookup import LookupLlama
from rag.hardware import processor_line
from rag.pipeline import Pipeline
from rag.prompt import GIVEN

QUESTIONS = [
    "Quote what the documentation says about how a document is replaced in the index.",
    "What does the manifest.json file record? Answer with the documentation's words.",
    "How are chunks sized? Quote the documentation.",
    "What does rag_eval measure? Answer with the documentation's own sentences.",
    "What happens when an ingest is killed? Quote the documentation.",
    "Which settings does the prompt builder use? Answer in the documentation's words.",
    "How does the index lock work? Quote the documentation.",
    "What does StoreReaders check on every request? Quote it.",
]
FOLLOWUPS = [
    ("How is a document replaced in the index?", "And what do readers see while it happens?"),
    ("What is in manifest.json?", "And when is an index refused?"),
    ("How are chunks sized?", "And what about a paragraph too big for one chunk?"),
    ("How does the index lock work?", "And what happens when it is held?"),
    ("What does rag_eval measure?", "And how are its results reported?"),
]


def timed(
    generator: Generator, messages: list[Message], params: GenerationParams
) -> tuple[str, float, float, int]:
    """Text, time to first token, total seconds, completion tokens."""
    t0 = time.perf_counter()
    first, parts, produced = None, [], 0
    for delta in generator.stream(messages, params):
        if first is None:
            first = time.perf_counter() - t0
        parts.append(delta.text)
        produced = delta.completion_tokens
    total = time.perf_counter() - t0
    return "".join(parts), first or total, total, produced


def decode_rate(first: float, total: float, produced: int) -> float:
    return (produced - 1) / (total - first) if produced > 1 and total > first else 0.0


def lookup(settings: Settings, pipeline: Pipeline, n: int, tokens: int, draft: int) -> None:
    params = GenerationParams(max_tokens=tokens, temperature=0.0, repeat_penalty=1.0, seed=0)
    fast = LlamaCppGenerator(settings.llm.model_copy(update={"prompt_lookup": draft}))
    default = pipeline.generator
    assert isinstance(default, LlamaCppGenerator) and isinstance(fast.llm, LookupLlama)
    # "plain" and "lookup" are one model, with lookup off then on: the same threads and
    # attention, so their greedy answers must be identical. "default" is the model as
    # loaded without lookup (single-token steps on every thread), for reference.
    rates: dict[str, list[float]] = {"default": [], "plain": [], "lookup": []}
    same, drafted, accepted = 0, 0, 0
    print(f"\nprompt lookup (up to {draft} tokens a step), greedy, max_tokens={tokens}")
    print(f"{'question':<52} {'tokens':>6} {'default':>7} {'plain':>6} {'lookup':>6} {'accept':>6} same")
    for question in QUESTIONS[:n]:
        messages = pipeline.prepare(question, params=params).prompt.messages
        # Decode speed only (after the first token); each run starts from an empty context.
        runs = {}
        for name, generator, n_draft in (
            ("default", default, 0),
            ("plain", fast, 0),
            ("lookup", fast, draft),
        ):
            assert isinstance(generator.llm, LookupLlama)
            generator.llm.lookup = n_draft
            generator.run(lambda g=generator: g.llm.reset())
            before = (fast.llm.stats.drafted, fast.llm.stats.accepted)
            runs[name] = timed(generator, messages, params)
            rates[name].append(decode_rate(*runs[name][1:]))
        d, a = fast.llm.stats.drafted - before[0], fast.llm.stats.accepted - before[1]
        drafted, accepted = drafted + d, accepted + a
        ok = runs["plain"][0] == runs["lookup"][0]
        same += ok
        print(
            f"{question[:52]:<52} {runs['plain'][3]:>6} {rates['default'][-1]:>7.1f} "
            f"{rates['plain'][-1]:>6.1f} {rates['lookup'][-1]:>6.1f} {a / max(d, 1):>6.2f} "
            f"{'yes' if ok else 'NO'}",
            flush=True,
        )
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(
        f"median decode tokens/s: default {med['default']:.1f}, plain {med['plain']:.1f}, lookup "
        f"{med['lookup']:.1f} ({med['lookup'] / med['plain']:.2f}x plain, "
        f"{med['lookup'] / med['default']:.2f}x default); drafts accepted {accepted}/{drafted}; "
        f"identical answers {same}/{n}"
    )
    fast.close()


def batch_cost(settings: Settings, pipeline: Pipeline, draft: int) -> None:
    """What reading a batch of k tokens costs against one token, after a grounded prompt."""
    fast = LlamaCppGenerator(settings.llm.model_copy(update={"prompt_lookup": draft}))
    models = {"without lookup": pipeline.generator, "with lookup": fast}
    prompt = pipeline.prepare(QUESTIONS[0]).prompt.messages
    times: dict[tuple[str, int], list[float]] = {}
    for generator in models.values():
        assert isinstance(generator, LlamaCppGenerator)
        tokens = generator.render(prompt).tokens
        generator.run(lambda g=generator, t=tokens: (g.llm.reset(), g.llm.eval(t)))
    for _ in range(8):  # interleaved, so that both meet the same load
        for name, generator in models.items():
            assert isinstance(generator, LlamaCppGenerator)
            for k in (1, 2, 4, 8):
                times.setdefault((name, k), []).append(
                    generator.run(lambda g=generator, k=k: _step(g.llm, k))
                )
    print(f"\nreading a batch of k tokens after a prompt of {len(tokens)} tokens (median of 8, ms)")
    for name in models:
        one = statistics.median(times[(name, 1)])
        cells = [
            f"k={k} {statistics.median(times[(name, k)]) * 1000:.1f} "
            f"({statistics.median(times[(name, k)]) / one:.1f}x)"
            for k in (1, 2, 4, 8)
        ]
        print(f"{name:<15} " + "  ".join(cells))
    fast.close()


def _step(llm: LookupLlama, k: int) -> float:
    past = llm.n_tokens
    llm._ctx.set_n_threads(llm.n_threads, llm.n_threads)  # as a step of decoding runs
    llm._batch.set_batch(batch=list(llm.input_ids[past - k : past]), n_past=past, logits_all=True)
    t0 = time.perf_counter()
    llm._ctx.decode(llm._batch)
    took = time.perf_counter() - t0
    llm._ctx.kv_cache_seq_rm(-1, past, -1)
    llm._ctx.set_n_threads(llm.n_threads, llm.n_threads_batch)
    return took


def prefix(pipeline: Pipeline, tokens: int) -> None:
    params = GenerationParams(max_tokens=tokens, temperature=0.0, top_k=1, repeat_penalty=1.0, seed=0)
    generator = pipeline.generator
    assert isinstance(generator, LlamaCppGenerator)
    print("\nprefix reuse: a follow-up's time to first token, right after its first turn and cold")
    print("layout 'as sent': the history as the client sends it (questions alone, answers as shown);")
    print("layout 'as read': the turns this pipeline answered, as the model read and wrote them")
    print("'given': passages of the follow-up that its history already gave, referred to by number")
    print(
        f"{'follow-up':<44} {'layout':<8} {'prompt':>6} {'cached':>6} {'given':>5} {'warm s':>7} "
        f"{'cold s':>7} {'ratio':>6}"
    )
    ratios: dict[str, list[float]] = {"as sent": [], "as read": []}
    for (first_q, follow), layout in [(f, lay) for f in FOLLOWUPS for lay in ratios]:
        answer = pipeline.ask(first_q, params=params)
        if layout == "as sent":
            pipeline._turns.clear()  # the pipeline forgets how it prompted the first turn
        history = [{"role": "user", "content": first_q}, {"role": "assistant", "content": answer.text}]
        prepared = pipeline.prepare(follow, history=history, params=params)
        messages = prepared.prompt.messages
        # The turn as the pipeline answers it: right after the first one, in the same context.
        held = generator.run(lambda: list(generator.llm._input_ids[: generator.llm.n_tokens]))
        common = _common(held, generator.render(messages).tokens)
        _, warm, _, _ = timed(generator, messages, params)
        generator.run(lambda: generator.llm.reset())  # nothing cached: the same prompt, cold
        _, cold, _, _ = timed(generator, messages, params)
        ratio = warm / cold
        ratios[layout].append(ratio)
        given = messages[-1]["content"].count(GIVEN)
        print(
            f"{follow[:44]:<44} {layout:<8} {prepared.prompt.n_tokens:>6} {common:>6} {given:>5} "
            f"{warm:>7.3f} {cold:>7.3f} {ratio:>6.2f}",
            flush=True,
        )
    for layout, found in ratios.items():
        print(
            f"median follow-up time to first token, warm over cold, {layout}: {statistics.median(found):.2f}"
        )


def _common(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


MEASURE = """
import json, sys, psutil, llama_cpp
before = psutil.Process().memory_info().rss
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=int(sys.argv[2]), n_threads=1, verbose=False)
llm.create_completion("The cat sat on the mat. " * 10, max_tokens=4, temperature=0)
print(json.dumps(psutil.Process().memory_info().rss - before))
"""


def ram(path: Path) -> None:
    info = read_gguf(path)
    print(f"\nresident memory of {info.name}, loaded and run once, against the estimate")
    print(f"{'n_ctx':>6} {'measured MiB':>12} {'estimate MiB':>12} {'ratio':>6}")
    for n_ctx in (1024, 2048, 4096, 8192):
        done = subprocess.run(
            [sys.executable, "-c", MEASURE, str(path), str(n_ctx)], check=True, capture_output=True, text=True
        )
        measured, estimate = json.loads(done.stdout), info.ram_bytes(n_ctx)
        print(f"{n_ctx:>6} {measured / 2**20:>12.1f} {estimate / 2**20:>12.1f} {measured / estimate:>6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--lookup", type=int, default=10, help="num_pred_tokens of prompt lookup")
    parser.add_argument("--model", default=None, help="a model name (default: the packaged one)")
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--ram", action="store_true", help="only the memory measurement")
    parser.add_argument("--only", choices=["lookup", "prefix", "batch"], default=None)
    parser.add_argument("--docs", default="architecture.md", help="pages of docs/ to index")
    args = parser.parse_args()
    print(processor_line())
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            overrides={
                "indexes_dir": str(Path(tmp) / "indexes"),
                "llm.n_ctx": args.n_ctx,
                "llm.model": args.model,
                "llm.temperature": 0.0,
            }
        )
        catalog = ModelCatalog(settings.llm)
        if args.ram:
            ram(catalog.path(catalog.default_name()))
            return
        settings.llm = catalog.settings_for(catalog.default_name())
        pipeline = Pipeline.from_settings(settings)
        docs = Path(tmp) / "docs"
        docs.mkdir()
        for name in args.docs.split(","):
            (docs / name).write_text((ROOT / "docs" / name).read_text())
        IngestWorker(settings, pipeline.embedder).run(docs)
        print(
            f"model {pipeline.default_model}, n_ctx {args.n_ctx}, index of docs/{{{args.docs}}}", flush=True
        )
        if args.only in (None, "lookup"):
            lookup(settings, pipeline, args.questions, args.max_tokens, args.lookup)
        if args.only in (None, "prefix"):
            prefix(pipeline, args.max_tokens)
        if args.only in (None, "batch"):
            batch_cost(settings, pipeline, args.lookup)


if __name__ == "__main__":
    main()
