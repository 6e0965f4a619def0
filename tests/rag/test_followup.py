"""Follow-up questions are searched as standalone queries: on a small multi-turn set
shipped with the tests, in English and French, with the real embedder and index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.worker import IngestWorker
from rag.config import Settings
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.followup import is_followup, standalone_query, usable_rewrite
from rag.retrievers import make_retriever
from rag.store import make_catalog

CASES = [
    json.loads(line)
    for line in (Path(__file__).parents[1] / "data" / "followups.jsonl").read_text().splitlines()
    if line.strip()
]

DOCS = {
    "cats.md": "# Cats\n\n## Sleep\n\nCats sleep about sixteen hours a day, mostly in short naps.\n\n"
    "## Food\n\nA cat eats fish and meat; milk upsets the stomach of most adult cats.\n",
    "etna.md": "# Mount Etna\n\n## Height\n\nMount Etna is 3,357 metres high, the tallest active "
    "volcano in Europe outside the Caucasus.\n\n## Eruptions\n\nEtna last erupted in 2024, "
    "with lava fountains over the south-east crater.\n",
    "bread.md": "# Bread\n\n## Rising\n\nThe dough must rise for two hours in a warm place.\n\n"
    "## Baking\n\nBake the loaf at 230 degrees for thirty minutes.\n",
    "chats.md": "# Les chats\n\n## Sommeil\n\nLes chats dorment environ seize heures par jour.\n\n"
    "## Nourriture\n\nUn chat mange du poisson et de la viande ; le lait lui donne mal au ventre.\n",
    "etna-fr.md": "# L'Etna\n\n## Hauteur\n\nL'Etna culmine à 3 357 mètres d'altitude.\n\n"
    "## Éruptions\n\nSa dernière éruption date de 2024, avec des fontaines de lave.\n",
}


@pytest.fixture
def indexed(settings: Settings, embedder: SentenceTransformerEmbedder, tmp_path: Path) -> Settings:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    IngestWorker(settings, embedder).run(docs)
    return settings


def history(turns: list[str]) -> list[dict[str, str]]:
    out = []
    for turn in turns:
        out += [{"role": "user", "content": turn}, {"role": "assistant", "content": "…"}]
    return out


def glued(question: str, turns: list[str]) -> str:
    """What search read before: the previous question glued on."""
    return f"{turns[-1]}\n{question}"


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_followups_find_their_passage(
    indexed: Settings, embedder: SentenceTransformerEmbedder, mode: str
) -> None:
    settings = indexed.model_copy(update={"retrieval": indexed.retrieval.model_copy(update={"mode": mode})})
    retriever = make_retriever(settings.retrieval, embedder)
    store = make_catalog(settings).open("default", readonly=True)
    right = {"standalone": 0, "glued": 0}
    missed = []

    def topic(query: str) -> str | None:
        hits = retriever.retrieve(store, query, 1)
        return hits[0].chunk.title if hits else None

    for case in CASES:
        turns = history(case["history"])
        for way, query in (
            ("standalone", standalone_query(case["question"], turns, topic)),
            ("glued", glued(case["question"], case["history"])),
        ):
            hits = retriever.retrieve(store, query, 1, floor=False)
            ok = bool(hits) and case["expect"] in hits[0].chunk.text
            right[way] += ok
            if way == "standalone" and not ok:
                missed.append((query, hits[0].chunk.text[:60] if hits else None))
    store.close()
    assert right["standalone"] >= len(CASES) - 1, missed
    assert right["standalone"] > right["glued"], right


def test_what_counts_as_a_followup() -> None:
    assert is_followup("And how long do they sleep?") and is_followup("Why?")
    assert is_followup("Et où se trouve-t-il ?") and is_followup("Pourquoi ?")
    assert not is_followup("Where is Mount Etna?") and not is_followup("Comment faire du pain ?")
    assert standalone_query("Where is Mount Etna?", history(["What do cats eat?"])) == (
        "Where is Mount Etna?"
    )
    assert usable_rewrite('"How long do cats sleep?"\nExtra', "How long?") == "How long do cats sleep?"
    assert usable_rewrite("", "How long?") is None


def test_model_rewrite_runs_and_falls_back(pipeline: object) -> None:
    from rag.pipeline import Pipeline

    assert isinstance(pipeline, Pipeline)
    pipeline.settings.retrieval.followups = "model"
    query = pipeline.search_query("And how long do they sleep?", history(["What do cats eat?"]))
    assert query and len(query) < 400
    assert pipeline.search_query("Where is Mount Etna?", history(["What do cats eat?"])) == (
        "Where is Mount Etna?"
    )  # not a follow-up: no model call


def test_a_followup_reads_only_its_new_passages(
    indexed: Settings, embedder: SentenceTransformerEmbedder, generator: object
) -> None:
    from rag.generators.base import GenerationParams
    from rag.generators.llama_cpp import LlamaCppGenerator
    from rag.pipeline import DoneEvent, Pipeline
    from rag.prompt import GIVEN

    assert isinstance(generator, LlamaCppGenerator)
    pipeline = Pipeline(indexed, embedder, generator)
    params = GenerationParams(max_tokens=24, temperature=0.0)
    first = pipeline.ask("How long do cats sleep?", params=params)
    numbered = {s.number: s.path for s in first.sources}
    turns = [
        {"role": "user", "content": "How long do cats sleep?"},
        {"role": "assistant", "content": first.text},
    ]
    prepared = pipeline.prepare("And what do they eat?", history=turns, params=params)
    prompt = prepared.prompt
    # The history is the first turn as the model read it; its passages are not read again.
    assert (
        prompt.messages[1]["content"].startswith("Sources:") and "Cats sleep" in prompt.messages[1]["content"]
    )
    new = prompt.messages[-1]["content"]
    given = [
        s
        for s in prompt.sources
        if f"[{s.number}] (" in new and GIVEN in new.split(f"[{s.number}] (")[1][:120]
    ]
    assert given, new
    for source in given:  # the same number names the same passage as in the first turn
        assert numbered[source.number] == source.path
        assert source.text.split(".")[0] not in new
    assert len({s.number for s in prompt.sources}) == len(prompt.sources)
    answer = next(e.answer for e in pipeline.generate(prepared) if isinstance(e, DoneEvent))
    assert {s.number for s in answer.sources} == {s.number for s in prompt.sources}
