"""The `rag` command, run as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def rag(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from rag_cli.main import main; main()", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200",
                               **(env or {})})  # fmt: skip


def test_ingest_ask_and_index_commands(corpus: Path, tmp_path: Path) -> None:
    (corpus / "broken.pdf").write_bytes(b"not a pdf")
    r = rag("ingest", str(corpus), "--json", cwd=tmp_path)
    assert r.returncode == 3, r.stderr  # one file failed, the rest ingested
    summary = json.loads(r.stdout)
    assert summary["added"] == 3 and summary["failed"] == 1
    assert summary["failures"][0]["path"].endswith("broken.pdf")

    r = rag("ask", "What does a cat eat?", "--json", "--max-tokens", "24", "--seed", "1",
            cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert answer["answer"] and answer["sources"][0]["path"].endswith("cats.md")

    info = json.loads(rag("index", "info", "default", "--json", cwd=tmp_path).stdout)
    assert info["files"] == 3 and info["embedder"] == "all-MiniLM-L6-v2"
    assert rag("index", "delete", "default", "--yes", cwd=tmp_path).returncode == 0
    assert "no indexes" in rag("index", "list", cwd=tmp_path).stdout


def test_expected_errors_are_one_line(tmp_path: Path) -> None:
    r = rag("ask", "hello", cwd=tmp_path)
    assert r.returncode == 1
    assert "no index named 'default'" in r.stderr and "Traceback" not in r.stderr
    r = rag("config", cwd=tmp_path, env={"RAG_LLM__N_CTX": "-3"})
    assert r.returncode == 1 and "llm.n_ctx" in r.stderr and "Traceback" not in r.stderr


def test_config_shows_sources(tmp_path: Path) -> None:
    r = rag("config", "--set", "retrieval.top_k=9", cwd=tmp_path, env={"RAG_LLM__N_CTX": "1024"})
    assert r.returncode == 0, r.stderr
    lines = {line.split("│")[1].strip(): line for line in r.stdout.splitlines() if "│" in line}
    assert "cli" in lines["retrieval.top_k"] and "env" in lines["llm.n_ctx"]
    assert "default" in lines["chunking.size"]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_file_is_valid() -> None:
    r = subprocess.run(["docker-compose", "config", "-q"], cwd=ROOT, capture_output=True,
                       text=True)  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_eval_and_compare(tmp_path: Path) -> None:
    from tests.rag_eval.test_datasets import write_beir

    beir = write_beir(tmp_path / "tiny", {"etna": ("Etna", "Mount Etna is a volcano in Sicily."),
                                          "cat": ("Cats", "Cats sleep sixteen hours a day.")},
                      {"q1": "Where is Etna?", "q2": "How long do cats sleep?"},
                      {"q1": ["etna"], "q2": ["cat"]})  # fmt: skip
    r = rag("eval", str(beir), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    first = json.loads(r.stdout)
    assert first["metrics"]["ndcg@10"] == 1.0 and Path(first["path"]).is_file()
    r = rag("eval", str(beir), "--json", "--limit", "1", "--set", "retrieval.top_k=2", cwd=tmp_path)
    second = json.loads(r.stdout)
    r = rag("eval", "--compare", first["id"], second["id"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "ndcg@10" in r.stdout and "retrieval.top_k" in r.stdout
    r = rag("eval", str(tmp_path / "missing"), cwd=tmp_path)
    assert r.returncode == 1 and "no dataset" in r.stderr and "Traceback" not in r.stderr
