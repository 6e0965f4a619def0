"""The `rag` command, run as a user runs it."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rag.embedders import recorded_name

ROOT = Path(__file__).parents[1]


def rag(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from rag_cli.main import main; main()", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200", **(env or {})},
    )


def test_ingest_ask_and_index_commands(corpus: Path, tmp_path: Path) -> None:
    (corpus / "broken.pdf").write_bytes(b"not a pdf")
    r = rag("ingest", str(corpus), "--json", cwd=tmp_path)
    assert r.returncode == 3, r.stderr  # one file failed, the rest ingested
    summary = json.loads(r.stdout)
    assert summary["added"] == 3 and summary["failed"] == 1
    assert summary["failures"][0]["path"].endswith("broken.pdf")

    r = rag("ask", "What does a cat eat?", "--json", "--max-tokens", "24", "--seed", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert answer["answer"] and answer["sources"][0]["path"].endswith("cats.md")

    info = json.loads(rag("index", "info", "default", "--json", cwd=tmp_path).stdout)
    assert info["files"] == 3 and info["embedder"] == recorded_name("onnx", "all-MiniLM-L6-v2")
    assert rag("index", "delete", "default", "--yes", cwd=tmp_path).returncode == 0
    assert "no indexes" in rag("index", "list", cwd=tmp_path).stdout


def test_expected_errors_are_one_line(tmp_path: Path) -> None:
    r = rag("ask", "hello", cwd=tmp_path)
    assert r.returncode == 1
    assert "no index named 'default'" in r.stderr and "Traceback" not in r.stderr
    r = rag("config", cwd=tmp_path, env={"RAG_LLM__N_CTX": "-3"})
    assert r.returncode == 1 and "llm.n_ctx" in r.stderr and "Traceback" not in r.stderr


def test_a_filter_that_is_not_a_glob_is_one_line(tmp_path: Path) -> None:
    for command in ("search", "ask"):
        r = rag(command, "What do cats eat?", "--path", "[z-a]*", cwd=tmp_path)
        assert r.returncode == 1, r.stderr
        assert "not a valid glob" in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_config_shows_sources(tmp_path: Path) -> None:
    r = rag("config", "--set", "retrieval.top_k=9", cwd=tmp_path, env={"RAG_LLM__N_CTX": "1024"})
    assert r.returncode == 0, r.stderr
    lines = {line.split("│")[1].strip(): line for line in r.stdout.splitlines() if "│" in line}
    assert "cli" in lines["retrieval.top_k"] and "env" in lines["llm.n_ctx"]
    assert "default" in lines["chunking.size"]


@pytest.mark.parametrize("profile", [None, "postgres", "llama-server"])
def test_compose_file_is_valid(profile: str | None) -> None:
    flags = ["--profile", profile] if profile else []
    r = subprocess.run(["docker-compose", *flags, "config", "-q"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    if profile == "postgres":  # the service is there, with the pgvector image
        shown = subprocess.run(["docker-compose", *flags, "config"], cwd=ROOT, capture_output=True, text=True)
        assert "pgvector/pgvector:pg16" in shown.stdout and "RAG_STORE__KIND" in shown.stdout
    if profile == "llama-server":  # llama.cpp's server on the models volume; the api told of it
        shown = subprocess.run(["docker-compose", *flags, "config"], cwd=ROOT, capture_output=True, text=True)
        assert "ghcr.io/ggml-org/llama.cpp:server" in shown.stdout and "/models/model.gguf" in shown.stdout
        assert "RAG_LLM__BASE_URL: http://llama-server:8080/v1" in shown.stdout


def test_eval_and_compare(tmp_path: Path) -> None:
    from tests.rag_eval.test_datasets import write_beir

    beir = write_beir(
        tmp_path / "tiny",
        {
            "etna": ("Etna", "Mount Etna is a volcano in Sicily."),
            "cat": ("Cats", "Cats sleep sixteen hours a day."),
        },
        {"q1": "Where is Etna?", "q2": "How long do cats sleep?"},
        {"q1": ["etna"], "q2": ["cat"]},
    )
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


def test_ingest_watch_runs_again_on_changes(corpus: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from rag_cli.main import main; main()",
            "ingest",
            str(corpus),
            "--watch",
            "--json",
            "--debounce-ms",
            "200",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()], daemon=True).start()
    try:
        first = json.loads(lines.get(timeout=120))  # one JSON summary per line and run
        assert first["added"] == 3, first
        (corpus / "owls.md").write_text("# Owls\n\nOwls hunt mice at night.\n")
        (corpus / "bread.txt").write_text("Bread is baked at 230 degrees.\n")
        (corpus / "volcano.txt").unlink()
        (corpus / ".draft.md").write_text("A hidden draft is not ingested.\n")
        totals = {"added": 0, "updated": 0, "removed": 0}
        while totals != {"added": 1, "updated": 1, "removed": 1}:
            summary = json.loads(lines.get(timeout=60))
            totals = {k: totals[k] + summary[k] for k in totals}
            assert all(v <= 1 for v in totals.values()), totals
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    assert code == 0, proc.stderr.read() if proc.stderr else ""


def test_unreadable_file_is_reported(corpus: Path, tmp_path: Path) -> None:
    locked = corpus / "locked.txt"
    locked.write_text("Nobody may read this.\n")
    locked.chmod(0)
    prefix: list[str] = []
    if os.geteuid() == 0:  # root reads anything: run without the capabilities that allow it
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv")
        caps = "-dac_override,-dac_read_search"
        prefix = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}"]
    r = subprocess.run(
        [*prefix, sys.executable, "-m", "rag_cli", "ingest", str(corpus), "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 3, r.stderr
    summary = json.loads(r.stdout)
    assert summary["added"] == 3 and summary["failures"] == [
        {"path": "docs/locked.txt", "reason": "permission denied"}
    ]  # shown relative to docs/..


def test_odd_names_are_printed_on_one_line_as_they_are(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "[").mkdir(parents=True)  # its file is shown "docs/[/x].txt": a closing tag of markup
    for name in ("[/x].txt", "[bold]b.txt", "a\nfailed docs: forged.txt"):
        (docs / name).write_bytes(b"")  # no text: each fails, and is printed
    r = rag("ingest", str(docs), cwd=tmp_path)
    assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr
    assert sorted(line for line in r.stderr.splitlines() if line.startswith("failed")) == [
        "failed docs/[/x].txt: empty file",
        "failed docs/[bold]b.txt: empty file",
        "failed docs/a\\nfailed docs: forged.txt: empty file",
    ]
    r = rag("ingest", str(docs), "--json", cwd=tmp_path)
    failed = {f["path"] for f in json.loads(r.stdout)["failures"]}
    assert failed == {"docs/[/x].txt", "docs/[bold]b.txt", "docs/a\nfailed docs: forged.txt"}


def test_search_shows_ranked_chunks_without_the_model(corpus: Path, tmp_path: Path) -> None:
    (corpus / "recette.txt").write_text(
        "Pour faire le pain, pétrissez la pâte dix minutes puis laissez-la lever deux heures.\n"
    )
    assert rag("ingest", str(corpus), "--quiet", cwd=tmp_path).returncode == 0
    for mode in ("dense", "lexical", "hybrid"):
        r = rag(
            "search",
            "Combien de temps pétrir la pâte à pain ?",
            "--mode",
            mode,
            "--json",
            "--min-score",
            "0",
            cwd=tmp_path,
        )
        assert r.returncode == 0, r.stderr
        found = json.loads(r.stdout)
        assert found["mode"] == mode and found["results"], found
        first = found["results"][0]
        assert {"path", "pages", "heading", "score", "scores", "text"} <= first.keys()
        if mode != "dense":
            assert first["path"] == "docs/recette.txt" and "bm25" in first["scores"]
    r = rag("search", "What do cats eat?", "--top-k", "1", cwd=tmp_path)
    assert r.returncode == 0 and "cats.md" in r.stdout

    r = rag("index", "chunks", "default", "--path", "*cats*", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert {row["path"] for row in rows} == {"docs/cats.md"}
    assert [row["heading"] for row in rows] == ["Cats", "Cats > Food"]
    assert "fish" in rows[1]["text"]


def test_a_multilingual_index_is_searched_across_languages_with_its_own_model(
    corpus: Path, tmp_path: Path
) -> None:
    """Ingested once with the multilingual model set, an index is searched with that model
    without setting it again: a French question finds the English passage by meaning
    alone (dense), and `rag index info` names the model."""
    r = rag(
        "ingest",
        str(corpus),
        "--index",
        "multi",
        "--quiet",
        "--set",
        "embedder.model=multilingual-e5-small-q4",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    info = json.loads(rag("index", "info", "multi", "--json", cwd=tmp_path).stdout)
    assert info["embedder"] == recorded_name("onnx", "multilingual-e5-small-q4")
    r = rag(
        "search",
        "Que mangent les chats ?",
        "--index",
        "multi",
        "--mode",
        "dense",
        "--top-k",
        "1",
        "--json",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["results"][0]["path"] == "docs/cats.md"
    # Answering and ingesting again follow the index's model too.
    r = rag("ask", "Que mangent les chats ?", "--index", "multi", "--json", "--max-tokens", "8", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["sources"][0]["path"].endswith("cats.md")
    (corpus / "volcano.txt").write_text("Mount Etna erupted again in 2021.\n")
    r = rag("ingest", str(corpus), "--index", "multi", "--json", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["updated"] == 1, r.stderr
    # The model set against the index's is refused, with the way out.
    r = rag("search", "cats", "--index", "multi", "--set", "embedder.model=all-MiniLM-L6-v2", cwd=tmp_path)
    assert r.returncode == 1 and "built with embedder" in r.stderr and "Traceback" not in r.stderr


def test_models_list_and_info(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "notes.gguf").write_text("not a model")
    env = {"RAG_LLM__MODELS_DIR": str(models)}
    r = rag("models", "list", "--json", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    listed = json.loads(r.stdout)
    (model,) = listed["models"]
    assert model["name"] == "SmolLM2-135M-Instruct.Q4_1" and model["default"]
    assert model["quantization"] == "Q4_1" and model["architecture"] == "llama"
    assert model["n_ctx"] == 8192 and model["ram_bytes"] > model["file_size"]
    assert listed["errors"] == [f"{models / 'notes.gguf'}: not a GGUF file (no GGUF magic number)"]
    table = rag("models", "list", cwd=tmp_path, env=env).stdout
    assert "SmolLM2-135M-Instruct.Q4_1 (default)" in table and "apache-2.0" in table
    info = rag("models", "info", "smollm2-135m-instruct.q4_1", cwd=tmp_path, env=env).stdout
    assert "kv_cache_bytes" in info and "tokenizer.chat_template" in info
    r = rag("models", "info", str(models / "notes.gguf"), cwd=tmp_path, env=env)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "not a GGUF file" in r.stderr
    r = rag("models", "info", "nope", cwd=tmp_path, env=env)
    assert r.returncode == 1 and "unknown model 'nope'" in r.stderr and "Traceback" not in r.stderr


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    r = rag(
        "keys",
        "create",
        "hr-bot",
        "--indexes",
        "hr,manual",
        "--role",
        "ingest",
        "--expires",
        "2999-01-01",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    secret = r.stdout.strip()
    assert secret.startswith("rag_") and "shown only this once" in r.stderr
    assert secret not in (tmp_path / "indexes" / "keys.sqlite").read_bytes().decode("latin-1")
    listed = rag("keys", "list", "--json", cwd=tmp_path)
    assert secret not in listed.stdout
    (row,) = json.loads(listed.stdout)
    assert (row["name"], row["role"], row["indexes"], row["last_used"]) == (
        "hr-bot",
        "ingest",
        "hr,manual",
        None,
    )
    assert row["expires"].startswith("2999-01-01") or row["expires"].startswith("2998-12-31")
    again = rag("keys", "create", "hr-bot", "--indexes", "*", cwd=tmp_path)
    assert again.returncode == 1 and "exists" in again.stderr and "Traceback" not in again.stderr
    for wrong in (["--role", "root"], ["--expires", "2001-01-01"], ["--indexes", "hr,*"]):
        args = ["keys", "create", "x", "--indexes", "hr", *wrong]
        r = rag(*args, cwd=tmp_path)
        assert r.returncode == 1 and "Traceback" not in r.stderr, (wrong, r.stderr)
    assert rag("keys", "revoke", "hr-bot", cwd=tmp_path).returncode == 0
    assert json.loads(rag("keys", "list", "--json", cwd=tmp_path).stdout) == []
    assert rag("keys", "revoke", "hr-bot", cwd=tmp_path).returncode == 1
