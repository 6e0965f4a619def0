"""`rag eval --models A,B`: the same questions through two real GGUF models, side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.generators.gguf import quantize
from rag.generators.gguf_catalog import default_model_path
from rag_eval.chart import quality_latency_page, quality_metric
from rag_eval.model_comparison import speed_of

ROOT = Path(__file__).parents[2]
DEFAULT = "SmolLM2-135M-Instruct.Q4_1"
OTHER = "SmolLM2-135M-Instruct.Q4_0"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with the packaged model requantized to Q4_0, documents, questions."""
    root = tmp_path_factory.mktemp("eval-models")
    quantize(default_model_path(), root / "models" / f"{OTHER}.gguf", "Q4_0")
    docs = root / "docs"
    docs.mkdir()
    (docs / "cats.md").write_text("# Cats\n\nA cat eats fish and meat. Cats sleep sixteen hours a day.\n")
    (docs / "volcano.txt").write_text("Mount Etna is an active volcano on the east coast of Sicily.\n")
    (root / "questions.jsonl").write_text(
        "".join(
            json.dumps(q) + "\n"
            for q in [
                {"question": "Where is Mount Etna?", "answer": "Sicily", "relevant": ["volcano.txt"]},
                {"question": "What does a cat eat?", "answers": ["fish and meat"], "relevant": ["cats.md"]},
            ]
        )
    )
    return root


@pytest.fixture(scope="module")
def report(workspace: Path) -> dict[str, object]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "200",
        "RAG_LLM__MODELS_DIR": str(workspace / "models"),
        "RAG_LLM__N_CTX": "1024",
        "RAG_LLM__MAX_TOKENS": "16",
        "RAG_LLM__TEMPERATURE": "0",
        "RAG_LLM__SEED": "1",
        "RAG_INDEXES_DIR": str(workspace / "indexes"),
    }
    command = [
        sys.executable,
        "-c",
        "from rag_cli.main import main; main()",
        "eval",
        str(workspace / "questions.jsonl"),
        "--corpus",
        str(workspace / "docs"),
        "--workdir",
        str(workspace / "evals"),
        "--models",
        f"{DEFAULT},{OTHER.lower()}",
    ]
    table = subprocess.run(command, cwd=workspace, env=env, capture_output=True, text=True, timeout=600)
    assert table.returncode == 0, table.stderr
    saved = sorted((workspace / "evals" / "models").glob("*.json"))
    assert len(saved) == 1
    found: dict[str, object] = json.loads(saved[0].read_text())
    found["stdout"] = table.stdout
    return found


def test_one_table_side_by_side(report: dict[str, object]) -> None:
    lines = str(report["stdout"]).splitlines()
    header = next(line for line in lines if DEFAULT in line)
    assert OTHER in header  # both models are columns of one table
    for label in (
        "contains",
        "f1",
        "time to first token (s)",
        "generation tokens/s",
        "prompt tokens/s",
        "peak RAM (MiB)",
    ):
        assert any(line.lstrip("│┃ ").startswith(label) for line in lines), label


def test_each_model_is_measured_on_the_same_questions(report: dict[str, object]) -> None:
    models = report["models"]
    assert isinstance(models, list) and [m["model"] for m in models] == [DEFAULT, OTHER]
    assert [m["quantization"] for m in models] == ["Q4_1", "Q4_0"]
    runs = [json.loads(Path(m["path"]).read_text()) for m in models]
    # The same retrieval for both: the ranking of documents does not depend on the model.
    assert [q["retrieved"] for q in runs[0]["queries"]] == [q["retrieved"] for q in runs[1]["queries"]]
    assert {q["model"] for q in runs[1]["queries"]} == {OTHER}
    for m in models:
        speed = m["speed"]
        assert 0 < speed["ttft_s"] <= speed["answer_s"]
        assert speed["gen_tokens_per_s"] > 1 and speed["prompt_tokens_per_s"] > 1
        assert speed["peak_rss_mib"] > m["file_size"] / 2**20  # the weights are resident
        assert 0 <= m["metrics"]["contains"] <= 1


def test_the_chart_is_a_self_contained_page(report: dict[str, object]) -> None:
    page = Path(str(report["chart"])).read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page and "<script" not in page
    assert page.count("<circle") == 2 and DEFAULT in page and OTHER in page
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched


def test_speed_leaves_out_answers_the_model_did_not_write() -> None:
    queries = [
        {"timings": {"first_token": 0.1, "generate": 1.1}, "usage": {"prompt": 100, "completion": 11}},
        {"timings": {"retrieve": 0.01}, "usage": {"prompt": 40, "completion": 0}},
    ]
    speed = speed_of(queries)
    assert speed == {
        "ttft_s": 0.1,
        "answer_s": 1.1,
        "gen_tokens_per_s": 10.0,
        "prompt_tokens_per_s": 1000.0,
        "answers_timed": 1.0,
    }
    empty = {
        "dataset": {"name": "d", "queries": 0},
        "models": [{"model": "m", "metrics": {}, "speed": speed_of([]), "quantization": "Q4_0"}],
    }
    assert quality_metric(empty) is None and "<svg" in quality_latency_page(empty)
