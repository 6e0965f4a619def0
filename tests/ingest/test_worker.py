from __future__ import annotations

import errno
import itertools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from ingest.loaders import Page
from ingest.worker import FileOutcome, IngestWorker
from rag.config import EmbedderSettings, Settings, load_settings
from rag.embedders import recorded_name
from rag.embedders.sentence_transformers import SentenceTransformerEmbedder
from rag.errors import IndexMismatchError, RagError
from rag.store import LocalCatalog as IndexCatalog
from rag.util import undecodable
from tests.fakes import HashEmbedder, write_numbered_text
from tests.pdfs import blank_pdf, encrypted_pdf, text_pdf


def chunk_texts(settings: Settings, name: str = "default") -> list[tuple[str, str]]:
    index = IndexCatalog(settings.indexes_dir).open(name)
    try:
        rows = sorted((c.path, c.text) for _, c in index.all_chunks())
        assert len(index.vectors) == len(rows)  # every chunk has its live vector, none more
        return rows
    finally:
        index.close()


def test_incremental_add_change_remove(worker: IngestWorker, settings: Settings, corpus: Path) -> None:
    first = worker.run(corpus)
    assert first.count("added") == 3 and first.ok
    again = worker.run(corpus)
    assert again.count("unchanged") == 3 and again.chunks_written == 0

    (corpus / "bread.txt").write_text("Sourdough needs a starter instead of yeast.\n")
    (corpus / "volcano.txt").unlink()
    (corpus / "new.md").write_text("# New\n\nA new document about tea.\n")
    os.utime(corpus / "cats.md")  # touched, same content: not re-embedded
    third = worker.run(corpus)
    assert (third.count("updated"), third.count("removed"), third.count("added")) == (1, 1, 1)
    assert third.count("unchanged") == 1
    texts = chunk_texts(settings)
    assert not any("Etna" in t for _, t in texts)
    assert any("Sourdough" in t for _, t in texts)
    assert not any("knead" in t for _, t in texts)


def test_bad_files_are_reported_and_the_rest_ingested(
    worker: IngestWorker, corpus: Path, tmp_path: Path
) -> None:
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (corpus / "corrupt.pdf").write_bytes(b"%PDF-1.7 this is not a pdf")
    blank_pdf(corpus / "scanned.pdf")
    encrypted_pdf(corpus / "locked.pdf", text_pdf(tmp_path / "src.pdf", ["secret"]))
    (corpus / "loop").symlink_to(corpus / "loop")
    (corpus / "tool.exe").write_bytes(b"MZ")
    (corpus / "sub").mkdir()
    (corpus / "sub" / "up").symlink_to(corpus)  # a directory cycle
    report = worker.run(corpus)
    reasons = {Path(o.path).name: o.reason for o in report.outcomes if o.status == "failed"}
    assert reasons.keys() == {"empty.txt", "binary.txt", "corrupt.pdf", "scanned.pdf", "locked.pdf", "loop"}
    assert "OCR" in reasons["scanned.pdf"] and "password" in reasons["locked.pdf"]
    assert "symlink" in reasons["loop"]
    assert report.count("added") == 3 and report.count("skipped") == 1
    assert not report.ok


def test_file_deleted_during_run(worker: IngestWorker, corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest.reading as module

    real_hash = module.file_hash

    def vanishing(path: Path) -> str:
        if path.name == "bread.txt":
            path.unlink()
        return real_hash(path)

    monkeypatch.setattr(module, "file_hash", vanishing)
    report = worker.run(corpus)
    failed = [o for o in report.outcomes if o.status == "failed"]
    assert [Path(o.path).name for o in failed] == ["bread.txt"]
    assert "disappeared" in failed[0].reason
    assert report.count("added") == 2


def test_an_io_error_mid_read_keeps_the_document(
    settings: Settings, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that fails while it is read (a vanished mount, a bad disk) keeps the document
    it had in the index, small or streamed in batches."""
    from ingest.sandbox import LoaderSandbox

    worker = IngestWorker(settings, HashEmbedder())
    worker.large_file_chunks = 4
    (corpus / "long.txt").write_text("".join(f"Paragraph {i} says a dull thing.\n\n" for i in range(400)))
    first = worker.run(corpus)
    assert first.count("added") == 4 and first.chunks_written > 3 + 2 * worker.large_file_chunks
    before = stored_texts(settings.indexes_dir)
    real = LoaderSandbox.pages

    def failing(self: LoaderSandbox, path: Path) -> Iterator[Page]:
        pages = real(self, path)
        if path.name in ("bread.txt", "long.txt"):
            yield next(pages)
            raise OSError(errno.EIO, "Input/output error")
        yield from pages

    monkeypatch.setattr(LoaderSandbox, "pages", failing)
    for name in ("bread.txt", "long.txt"):
        (corpus / name).write_text((corpus / name).read_text() + "A changed line.\n")
    report = worker.run(corpus)
    failed = {o.path: o.reason for o in report.outcomes if o.status == "failed"}
    assert failed == {"docs/bread.txt": "Input/output error", "docs/long.txt": "Input/output error"}
    assert report.count("removed") == 0 and stored_texts(settings.indexes_dir) == before


def test_large_file_is_streamed(worker: IngestWorker, settings: Settings, tmp_path: Path) -> None:
    big = tmp_path / "big" / "big.txt"
    big.parent.mkdir()
    line = "Every line of this long log file says the same dull thing about nothing. "
    big.write_text((line * 12 + "\n\n") * 150)  # 150 chunks, over three write batches
    worker.large_file_chunks = 64
    report = worker.run(big.parent)
    assert report.ok and report.chunks_written > 128
    assert len(chunk_texts(settings)) == report.chunks_written


BIG_FILE_SCRIPT = """
import json, resource, sys, time
from pathlib import Path
import psutil
from ingest.worker import IngestWorker
from rag.config import load_settings
from tests.fakes import HashEmbedder
worker = IngestWorker(load_settings(overrides={"indexes_dir": sys.argv[1]}), HashEmbedder())
base = psutil.Process().memory_info().rss
out = {}
for name, folder in (("small", sys.argv[2]), ("big", sys.argv[3])):
    t0 = time.perf_counter()
    report = worker.run(Path(folder), name)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out[name] = {**report.summary(), "seconds": time.perf_counter() - t0, "growth": peak - base}
print(json.dumps(out))
"""


def test_big_text_file_is_ingested_in_bounded_memory(tmp_path: Path) -> None:
    """50 MB of text goes in whole, and the peak memory of its run hardly exceeds that of a
    5 MB file: nothing holds all of a file's text, tokens or chunks at once.

    Peak RSS is read in a child process (ru_maxrss), so it counts SQLite, tiktoken and FAISS
    memory too, which tracemalloc does not see (and tracemalloc makes the run 4x slower).
    The fake embedder's 16-dimension vectors keep what FAISS must hold small (~10 MB)."""
    sizes = {"small": 5 << 20, "big": 50 << 20}
    sentences = {}
    for name, size in sizes.items():
        (tmp_path / name).mkdir()
        sentences[name] = write_numbered_text(tmp_path / name / "long.txt", size)
        (tmp_path / name / "note.md").write_text("# Note\n\nA short note about tea.\n")
    script = tmp_path / "ingest_big.py"
    script.write_text(BIG_FILE_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            str(tmp_path / "indexes"),
            str(tmp_path / "small"),
            str(tmp_path / "big"),
        ],
        capture_output=True,
        env=env,
        text=True,
        check=True,
    )
    runs = json.loads(proc.stdout)
    for name in sizes:
        assert runs[name]["added"] == 2 and not runs[name]["failures"], runs[name]

    index = IndexCatalog(tmp_path / "indexes").open("big", readonly=True)
    try:
        chunks = [c for _, c in index.all_chunks() if c.path == "big/long.txt"]
        assert len(index.files()) == 2 and index.chunk_count() == len(chunks) + 1
    finally:
        index.close()
    assert sizes["big"] / 1200 < len(chunks) < sizes["big"] / 300  # 200-token chunks
    found = {int(n) for c in chunks for n in re.findall(r"Sentence (\d+) ", c.text)}
    assert found == set(range(sentences["big"]))  # every sentence made it

    more = runs["big"]["growth"] - runs["small"]["growth"]
    assert more < 0.5 * (sizes["big"] - sizes["small"]), runs


def test_other_embedder_or_chunking_is_refused(
    worker: IngestWorker,
    settings: Settings,
    corpus: Path,
    embedder: SentenceTransformerEmbedder,
) -> None:
    worker.run(corpus)
    store = IndexCatalog(settings.indexes_dir).open("default", readonly=True)
    with pytest.raises(IndexMismatchError, match="embedder"):
        store.manifest.check_embedder("sentence-transformers", "other-model", 768)
    store.close()
    other = settings.model_copy(update={"chunking": settings.chunking.model_copy(update={"size": 90})})
    with pytest.raises(IndexMismatchError, match="chunked"):
        IngestWorker(other, embedder).run(corpus)


def test_an_index_keeps_the_embedder_runtime_it_was_built_with(settings: Settings, corpus: Path) -> None:
    """An index built by int8 ONNX is ingested into with it when embedder.kind is left to
    its default, whichever the default is; set explicitly to the other kind, refused."""
    onnx = settings.model_copy(update={"embedder": EmbedderSettings(kind="onnx")})
    IngestWorker(onnx).run(corpus)
    torch = settings.model_copy(update={"embedder": EmbedderSettings(kind="sentence-transformers")})
    (corpus / "tea.md").write_text("# Tea\n\nGreen tea is steamed, black tea is oxidised.\n")
    with pytest.raises(IndexMismatchError, match="embedder"):
        IngestWorker(torch).run(corpus)
    default = settings.model_copy(update={"embedder": EmbedderSettings()})
    assert "kind" not in default.embedder.model_fields_set
    worker = IngestWorker(default)
    report = worker.run(corpus)
    assert report.count("added") == 1 and report.ok
    assert worker.embedder.kind == "onnx"
    store = IndexCatalog(settings.indexes_dir).open("default", readonly=True)
    built = (store.manifest.embedder_kind, store.manifest.embedder)
    assert built == ("onnx", recorded_name("onnx", default.embedder.model))
    store.close()
    assert worker.run(corpus, "fresh").ok  # a new index: the configured default again
    assert worker.embedder.kind == EmbedderSettings().kind


def test_stale_vectors_file_is_rebuilt(worker: IngestWorker, settings: Settings, corpus: Path) -> None:
    worker.run(corpus)
    folder = IndexCatalog(settings.indexes_dir).folder("default")
    for f in folder.glob("vectors-*.faiss"):
        f.unlink()
    assert len(chunk_texts(settings)) == 4


KILL_SCRIPT = """
import sys
from pathlib import Path
from ingest.worker import IngestWorker
from rag.config import load_settings
from rag.embedders import SentenceTransformerEmbedder
settings = load_settings(overrides={"indexes_dir": sys.argv[1]})
worker = IngestWorker(settings, SentenceTransformerEmbedder(settings.embedder))
print("ready", flush=True)
worker.run(Path(sys.argv[2]))
print("finished", flush=True)
"""


def _make_tree(root: Path, files: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        body = " ".join(f"Document {i} sentence {j} talks about topic {i * 7 % 13}." for j in range(40))
        (root / f"doc{i:03d}.txt").write_text(body)


def test_sigkill_at_any_moment_then_rerun_equals_clean_run(
    tmp_path: Path, settings: Settings, embedder: SentenceTransformerEmbedder
) -> None:
    tree = tmp_path / "tree"
    _make_tree(tree, 120)
    clean = settings.model_copy(update={"indexes_dir": tmp_path / "clean"})
    IngestWorker(clean, embedder).run(tree)
    expected = chunk_texts(clean)

    killed = settings.model_copy(update={"indexes_dir": tmp_path / "killed"})
    script = tmp_path / "ingest_once.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    for delay in (0.3, 1.0, 2.0):
        (tree / f"doc{int(delay * 10):03d}.txt").write_text(f"Changed before kill {delay}.")
        proc = subprocess.Popen(
            [sys.executable, str(script), str(killed.indexes_dir), str(tree)],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    IngestWorker(killed, embedder).run(tree)
    IngestWorker(clean, embedder).run(tree)
    assert chunk_texts(killed) == chunk_texts(clean)
    assert len(expected) > len(chunk_texts(clean))  # three documents shrank meanwhile
    assert json.loads((killed.indexes_dir / "default" / "manifest.json").read_text())["dimension"]


# -- book-keeping ----------------------------------------------------------------------


class PoisonEmbedder(HashEmbedder):
    """Fails on any batch holding the word POISON."""

    def embed(self, texts: Sequence[str]) -> Any:
        if any("POISON" in t for t in texts):
            raise RuntimeError("cannot embed this")
        return super().embed(texts)


class Recorder:
    def __init__(self) -> None:
        self.total: int | None = None
        self.done: list[str] = []

    def started(self, files: int) -> None:
        self.total = files

    def file_done(self, outcome: FileOutcome) -> None:
        self.done.append(outcome.path)


class CallRecorder(HashEmbedder):
    """Records how many texts each embedding call holds."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def embed(self, texts: Sequence[str]) -> Any:
        self.calls.append(len(texts))
        return super().embed(texts)


def test_the_runs_last_files_are_embedded_apart() -> None:
    from ingest.reading import Pending
    from ingest.writing import tail_apart
    from rag.store import FileRecord
    from rag.types import Chunk

    def item(name: str, chunks: int) -> Pending:
        record = FileRecord(name, "h", 1, 0.0, 0.0, name)
        chunked = [Chunk(f"{name} {i}", name, i) for i in range(chunks)]
        return Pending(name, name, [(record, chunked)], "added")

    items = [item("a", 50), item("b", 20), item("c", 5), item("d", 4)]
    assert [[p.name for p in part] for part in tail_apart(items, 8)] == [["a", "b"], ["c", "d"]]
    assert [[p.name for p in part] for part in tail_apart(items, 10)] == [["a"], ["b", "c", "d"]]
    assert [[p.name for p in part] for part in tail_apart(items, 100)] == [["a", "b", "c", "d"]]
    assert tail_apart(items[:1], 8) == [items[:1]]


def test_the_last_group_is_written_while_its_end_embeds(settings: Settings, tmp_path: Path) -> None:
    """The run's last files are embedded in a call of their own (two batches), so that
    the writing of the files before them does not wait for all embedding to end."""
    import ingest.writing as module

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(20):
        (docs / f"f{i:02}.txt").write_text(f"File {i} says one short thing.")
    settings.embedder.batch_size = 4
    embedder = CallRecorder()
    report = IngestWorker(settings, embedder).run(docs)
    assert report.count("added") == 20 and sum(embedder.calls) == 20
    assert [o.path for o in report.outcomes] == [f"docs/f{i:02}.txt" for i in range(20)]
    assert embedder.calls[-1] <= 4 * module.TAIL_BATCHES < sum(embedder.calls)


def test_chunks_are_prepared_from_the_ids_chunking_made(settings: Settings) -> None:
    """With a word-piece embedder, the ingest tokenizes each paragraph once: a chunk is
    prepared from its units' ids and its context header's, exactly as from its text."""
    from ingest.loaders import Page
    from ingest.reading import FileReader
    from rag.embedders import make_embedder

    embedder = make_embedder(EmbedderSettings(kind="onnx"))
    worker = IngestWorker(settings, embedder)
    body = "\n\n".join(
        f"Paragraph {i}: l'éléphant d'Afrique, naïve café, rows of text." * (1 + i % 5) for i in range(40)
    )
    pages = [Page(f"# Guide\n\n## Setup\n\n{body}\n\n| a | b |\n| --- | --- |\n| 1 | 2 |", markdown=True)]
    pairs = list(worker.chunker.pieced(pages, "docs/guide.md"))
    assert sum(ids is not None for _, ids in pairs) >= 0.8 * len(pairs) > 5
    texts = [c.context for c, _ in pairs]
    assert any(t != c.text for t, (c, _) in zip(texts, pairs, strict=True))  # headers are read too
    reader = FileReader(worker, settings.chunking.context)
    assert reader.prepare(pairs) == embedder.prepare(texts)


def test_ingesting_one_file_removes_nothing_else(settings: Settings, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "data.json").write_text('{"note": "the json file"}')
    (docs / "data.jsonl").write_text('{"note": "the jsonl file"}\n')
    (docs / "data").mkdir()
    (docs / "data" / "inner.txt").write_text("A file in a folder named like the file.")
    worker = IngestWorker(settings, HashEmbedder())
    assert worker.run(docs).count("added") == 3
    report = worker.run(docs / "data.json")
    assert report.count("removed") == 0 and report.count("unchanged") == 1
    (docs / "data.json").unlink()
    report = worker.run(docs / "data")  # a folder: only what is under it
    assert report.count("removed") == 0
    assert len(IndexCatalog(settings.indexes_dir).open("default", readonly=True).files()) == 3
    report = worker.run(docs)
    assert [Path(o.path).name for o in report.outcomes if o.status == "removed"] == ["data.json"]


def test_a_failing_batch_is_reported_against_its_file_once(settings: Settings, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):
        (docs / f"f{i}.txt").write_text(f"File {i} is fine." if i != 3 else "POISON inside.")
    big = "\n\n".join(f"Paragraph {j} of a long file that streams." for j in range(400))
    (docs / "g_big.txt").write_text(big)  # streamed: flushes what waits before it
    worker = IngestWorker(settings, PoisonEmbedder())
    worker.large_file_chunks = 8
    recorder = Recorder()
    report = worker.run(docs, observer=recorder)
    paths = [o.path for o in report.outcomes]
    assert len(paths) == len(set(paths)) == 7  # each file once
    assert [o.path for o in report.outcomes if o.status == "failed"] == ["docs/f3.txt"]
    assert "cannot embed" in next(o.reason for o in report.outcomes if o.status == "failed")
    assert report.count("added") == 6
    assert recorder.total == len(recorder.done) == 7


def test_progress_never_passes_its_total(settings: Settings, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(5):
        (docs / f"f{i}.txt").write_text(f"File {i}.")
    (docs / "tool.exe").write_bytes(b"MZ")
    worker = IngestWorker(settings, HashEmbedder())
    worker.run(docs)
    for i in range(3):
        (docs / f"f{i}.txt").unlink()
    recorder = Recorder()
    report = worker.run(docs, observer=recorder)
    assert report.count("removed") == 3
    assert recorder.total == len(recorder.done) == 6


def test_unchanged_tree_loads_no_model_and_is_quick(
    settings: Settings, tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(300):
        (docs / f"f{i:03d}.txt").write_text(f"File number {i} of many.")
    settings.embedder.kind = "sentence-transformers"  # the runtime of the `embedder` fixture
    IngestWorker(settings, embedder).run(docs)

    def no_model() -> SentenceTransformerEmbedder:
        raise AssertionError("the embedder was loaded")

    worker = IngestWorker(settings, no_model)
    t0 = time.perf_counter()
    report = worker.run(docs)
    assert time.perf_counter() - t0 < 1.0
    assert report.count("unchanged") == 300 and not worker.embedder_loaded


# -- confinement and hostile files -------------------------------------------------------


def test_links_out_of_the_allowed_folder_are_not_followed(settings: Settings, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "passwords.txt").write_text("The root password is hunter2.")
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.txt").write_text("A public note.")
    (root / "leak.txt").symlink_to(secret / "passwords.txt")
    (root / "dir").symlink_to(secret)
    (root / "inside.txt").symlink_to(root / "ok.txt")  # a link that stays inside is fine
    worker = IngestWorker(settings, HashEmbedder())
    report = worker.run(root, confine=[root])
    skipped = {o.path: o.reason for o in report.outcomes if o.status == "skipped"}
    assert set(skipped) == {"root/leak.txt", "root/dir"}
    assert all("outside" in r for r in skipped.values())
    texts = [c.text for _, c in IndexCatalog(settings.indexes_dir).open("default").all_chunks()]
    assert not any("hunter2" in t for t in texts) and any("public" in t for t in texts)
    with pytest.raises(RagError, match="outside"):
        worker.run(secret, confine=[root])


def test_a_parser_that_takes_too_long_is_stopped(settings: Settings, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    text_pdf(docs / "slow.pdf", [f"Page {i} " + "word " * 300 for i in range(5000)])
    (docs / "after.txt").write_text("The file after the slow one is ingested.")
    fifo = docs / "pipe.txt"
    os.mkfifo(fifo)  # would block a reader for ever
    quick = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"file_timeout": 0.5})})
    t0 = time.perf_counter()
    report = IngestWorker(quick, HashEmbedder()).run(docs)
    assert time.perf_counter() - t0 < 30
    outcomes = {o.path: o for o in report.outcomes}
    assert outcomes["docs/slow.pdf"].status == "failed"
    assert "longer than 0.5 s" in outcomes["docs/slow.pdf"].reason
    assert outcomes["docs/after.txt"].status == "added"
    assert outcomes["docs/pipe.txt"].status == "skipped"


def _mail(
    path: Path,
    attachments: dict[str, bytes],
    body: str = "Please find the price list and the terms attached.",
) -> None:
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = "Order of lamps"
    message["From"] = "shop@example.org"
    message.set_content(body)
    for name, data in attachments.items():
        message.add_attachment(data, maintype="text", subtype="csv", filename=name)
    path.write_bytes(message.as_bytes())


def test_attachments_are_documents_of_their_own(settings: Settings, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    _mail(docs / "order.eml", {"prices.csv": b"item,price\nlamp,42\n", "stock.csv": b"item,count\nlamp,7\n"})
    worker = IngestWorker(settings, HashEmbedder())
    recorder = Recorder()
    report = worker.run(docs, observer=recorder)
    assert [(o.path, o.status) for o in report.outcomes] == [("docs/order.eml", "added")]
    assert recorder.total == len(recorder.done) == 1

    def names() -> set[str]:
        store = IndexCatalog(settings.indexes_dir).open("default", readonly=True)
        try:
            return {c.path for _, c in store.all_chunks()}
        finally:
            store.close()

    assert names() == {"docs/order.eml", "docs/order.eml/prices.csv", "docs/order.eml/stock.csv"}
    assert worker.run(docs).count("unchanged") == 1
    assert len(names()) == 3  # an unchanged mail keeps its attachments
    _mail(docs / "order.eml", {"prices.csv": b"item,price\nlamp,45\n"})
    assert worker.run(docs).count("updated") == 1
    assert names() == {"docs/order.eml", "docs/order.eml/prices.csv"}
    (docs / "order.eml").unlink()
    (docs / "note.txt").write_text("Something else.")
    report = worker.run(docs)
    assert report.count("removed") == 2 and names() == {"docs/note.txt"}


def test_a_sandbox_left_unused_is_closed_at_once(tmp_path: Path) -> None:
    """The reading child starts when the sandbox is entered (it gets ready while the files
    are listed); a run that reads no file does not wait for it to be ready."""
    from ingest.sandbox import LoaderSandbox

    start = time.perf_counter()
    with LoaderSandbox(5.0) as sandbox:
        assert sandbox._child is not None
    assert time.perf_counter() - start < 1.0
    (tmp_path / "a.txt").write_text("Hello there.\n")
    with LoaderSandbox(5.0) as sandbox:
        assert [p.text.strip() for p in sandbox.pages(tmp_path / "a.txt")] == ["Hello there."]
        child = sandbox._child
        start = time.perf_counter()
    # Between documents the child holds nothing: it is stopped, not waited for.
    assert child is not None and child.poll() is not None and sandbox._child is None
    assert time.perf_counter() - start < 0.5


# -- names are data ------------------------------------------------------------------------


def stored_texts(indexes: Path, name: str = "default") -> dict[str, str]:
    """Each stored document's text (its chunks', in order), by shown path."""
    store = IndexCatalog(indexes).open(name, readonly=True)
    try:
        texts: dict[str, list[str]] = {}
        for _, chunk in store.all_chunks():
            texts.setdefault(chunk.path, []).append(chunk.text)
        return {path: " ".join(" ".join(parts).split()) for path, parts in texts.items()}
    finally:
        store.close()


def test_a_newline_in_a_name_shifts_no_text(worker: IngestWorker, settings: Settings, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    texts = {
        "1.md": "The first note is about tea.",
        "a\nb.md": "A name in two lines, about bread.",
        "c.md": "The third note is about cats.",
        "d.md": "The fourth note is about volcanoes.",
    }
    for name, text in texts.items():
        (docs / name).write_text(text + "\n")
    report = worker.run(docs)
    assert report.ok and report.count("added") == 4, report.summary()
    assert stored_texts(settings.indexes_dir) == {f"docs/{name}": text for name, text in texts.items()}
    assert worker.run(docs).count("unchanged") == 4


def test_the_tail_of_a_name_is_not_a_path_of_the_working_directory(
    worker: IngestWorker, settings: Settings, tmp_path: Path, secret_cwd: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "x\nconfig.toml").write_text("title = 'an upload with a crafted name'\n")
    (docs / "z.txt").write_text("The file after it.\n")
    report = worker.run(docs)
    assert report.ok and report.count("added") == 2, report.summary()
    assert stored_texts(settings.indexes_dir) == {
        "docs/x\nconfig.toml": "title = 'an upload with a crafted name'",
        "docs/z.txt": "The file after it.",
    }


def test_a_name_that_is_not_utf8_is_skipped_with_its_reason(
    worker: IngestWorker, settings: Settings, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / os.fsdecode(b"caf\xe9.md")).write_text("A Latin-1 name.\n")
    (docs / os.fsdecode(b"old\xff")).mkdir()
    (docs / os.fsdecode(b"old\xff") / "inside.md").write_text("In a folder of a Latin-1 name.\n")
    (docs / "caf\\xe9.md").write_text("A name that shows the same: a backslash in it.\n")
    report = worker.run(docs)
    assert sorted((o.path, o.status, o.reason) for o in report.outcomes) == [
        ("docs/caf\\xe9.md", "added", ""),
        ("docs/caf\\xe9.md", "skipped", "name is not valid UTF-8"),
        ("docs/old\\xff", "skipped", "name is not valid UTF-8"),
    ]
    shown = "docs/caf\\xe9.md"
    assert stored_texts(settings.indexes_dir) == {shown: "A name that shows the same: a backslash in it."}
    with pytest.raises(RagError, match="not valid UTF-8"):
        worker.run(docs / os.fsdecode(b"old\xff"))


_NAME_PARTS = st.one_of(
    st.sampled_from(
        ["a", "Z", "7", " ", "-", "'", '"', "\n", "\r", "\t", "\x01", "\x1b", "\x7f", "\\", "é", "→"]
        + ["\u2028", "\u202e", ".md", "[/x]"]
    ),
    st.characters(exclude_categories=["Cs"]),  # any character, control ones included
    st.binary(min_size=1, max_size=2).map(os.fsdecode),  # often bytes that are not UTF-8
).filter(lambda part: "/" not in part and "\0" not in part)


@st.composite
def _folders(draw: st.DrawFn) -> dict[str, str]:
    """File names (UTF-8 or not, up to 255 bytes, none hidden) and their texts."""
    files: dict[str, str] = {}
    for n in range(draw(st.integers(1, 6))):
        suffix = draw(st.sampled_from([".md", ".txt"]))
        stem = "".join(draw(st.lists(_NAME_PARTS, max_size=12)))
        if draw(st.booleans()):  # as long as a name may be
            stem += "x" * (255 - len(os.fsencode(stem + suffix)))
        name = draw(st.sampled_from(["-", "", "'"])) + stem + suffix
        if name.startswith(".") or len(os.fsencode(name)) > 255:
            continue
        words = draw(st.lists(st.sampled_from(["tea", "bread", "-", "'quoted'", '"x"']), max_size=8))
        files[os.fsdecode(os.fsencode(name))] = " ".join([f"file{n}", *words])
    return files


@examples(max_examples=15, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@example(files={"1.md": "one", "a\nb.md": "two", "c.md": "three", "d.md": "four"})
@given(files=_folders())
def test_every_stored_document_holds_its_own_files_text(
    files: dict[str, str], embedder: SentenceTransformerEmbedder
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        for name, text in files.items():
            (docs / name).write_text(text + "\n")
        setup = load_settings(overrides={"indexes_dir": str(Path(tmp) / "indexes")})
        report = IngestWorker(setup, embedder).run(docs)
        readable = {name: text for name, text in files.items() if not undecodable(name)}
        assert stored_texts(setup.indexes_dir) == {f"docs/{name}": text for name, text in readable.items()}
        skipped = [o for o in report.outcomes if o.status == "skipped"]
        assert len(skipped) == len(files) - len(readable)
        assert all(o.reason == "name is not valid UTF-8" for o in skipped)
        assert report.count("added") == len(readable) and report.ok, report.summary()


# -- a failure inside a large document ---------------------------------------------------

BIG_WORD = "Tapestry"  # in every chunk of the large document, in no other file


def _big_text(version: int) -> str:
    return "\n\n".join(
        f"{BIG_WORD} paragraph {j} of version {version}: " + "woven threads of wool " * 12 for j in range(150)
    )


def _corpus_with_a_large_document(root: Path) -> None:
    root.mkdir()
    (root / "a.txt").write_text("Anchors hold ships in harbour.")
    (root / "big.txt").write_text(_big_text(1))
    (root / "c.txt").write_text("Copper conducts heat well.")


class _Counted:
    """The real embedder, its calls on the large document counted; the `fail_at`-th of
    them raises."""

    def __init__(
        self,
        embedder: SentenceTransformerEmbedder,
        monkeypatch: pytest.MonkeyPatch,
        fail_at: int | None = None,
    ) -> None:
        self.calls = 0
        real = embedder.embed

        def embed(texts: Sequence[str]) -> Any:
            if any(BIG_WORD in t for t in texts):
                self.calls += 1
                if self.calls == fail_at:
                    raise RuntimeError("out of memory while embedding")
            return real(texts)

        monkeypatch.setattr(embedder, "embed", embed)


def _streaming(settings: Settings, embedder: SentenceTransformerEmbedder) -> IngestWorker:
    """A worker that streams documents of more than 8 chunks, in batches of 8."""
    worker = IngestWorker(settings, embedder)
    worker.large_file_chunks = 8
    return worker


def _texts_of(settings: Settings, path_end: str) -> list[str]:
    return [text for path, text in chunk_texts(settings) if path.endswith(path_end)]


def _fails_the_document_only(
    settings: Settings, embedder: SentenceTransformerEmbedder, docs: Path, counted: _Counted, says: str
) -> None:
    """The run that fails inside big.txt (version 2): that document failed, its version 1
    kept whole, no batch of it embedded after the failure, the other files committed; a
    run after it ingests version 2."""
    report = _streaming(settings, embedder).run(docs)
    failed = [(o.path, o.reason) for o in report.outcomes if o.status == "failed"]
    assert [path for path, _ in failed] == ["docs/big.txt"] and says in failed[0][1]
    assert {o.path: o.status for o in report.outcomes} == {
        "docs/a.txt": "unchanged",
        "docs/big.txt": "failed",
        "docs/c.txt": "updated",
        "docs/d.txt": "added",
    }
    assert counted.calls == 2  # the rest of its batches skipped, not embedded
    kept = _texts_of(settings, "big.txt")
    assert len(kept) >= 40 and all("of version 1:" in t for t in kept)  # version 1, whole
    assert _texts_of(settings, "d.txt") == ["Dunes move with the wind."]
    rerun = _streaming(settings, embedder).run(docs)
    assert rerun.ok and {o.path: o.status for o in rerun.outcomes}["docs/big.txt"] == "updated"
    assert sorted(_texts_of(settings, "big.txt")) == sorted(
        t.replace("of version 1:", "of version 2:") for t in kept
    )


def _second_version(settings: Settings, embedder: SentenceTransformerEmbedder, tmp_path: Path) -> Path:
    """The corpus ingested; then big.txt changed, c.txt changed and d.txt added."""
    docs = tmp_path / "docs"
    _corpus_with_a_large_document(docs)
    assert _streaming(settings, embedder).run(docs).ok
    (docs / "big.txt").write_text(_big_text(2))
    (docs / "c.txt").unlink()
    (docs / "c.txt").write_text("Copper conducts heat and electricity well.")
    (docs / "d.txt").write_text("Dunes move with the wind.")
    return docs


@pytest.mark.parametrize("failing", ["embedder", "store"])
def test_a_failure_inside_a_large_document_fails_that_document_only(
    settings: Settings,
    embedder: SentenceTransformerEmbedder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failing: str,
) -> None:
    """The real embedder failing at the large document's second batch, or the store
    failing to write that batch."""
    from rag.store.local.chunks import ChunkDB

    docs = _second_version(settings, embedder, tmp_path)
    if failing == "embedder":
        counted = _Counted(embedder, monkeypatch, fail_at=2)
        _fails_the_document_only(settings, embedder, docs, counted, "out of memory while embedding")
        return
    counted = _Counted(embedder, monkeypatch)
    real_insert = ChunkDB.insert_chunks
    inserted = itertools.count(1)

    def insert_chunks(self: ChunkDB, file_id: int, chunks: Sequence[Any], *args: Any) -> Any:
        if "version 2:" in chunks[0].text and next(inserted) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        return real_insert(self, file_id, chunks, *args)

    monkeypatch.setattr(ChunkDB, "insert_chunks", insert_chunks)
    _fails_the_document_only(settings, embedder, docs, counted, "disk I/O error")


def test_a_file_failed_after_some_of_its_documents_were_written_is_read_again(
    settings: Settings, tmp_path: Path
) -> None:
    """A mail whose long body is written as it streams, and whose attachment then fails:
    the mail is reported failed, and the next run reads it again rather than taking it
    for unchanged."""
    docs = tmp_path / "docs"
    docs.mkdir()
    body = "\n\n".join(f"Paragraph {j} of a long letter about lamps and their prices." for j in range(300))
    _mail(docs / "order.eml", {"stock.csv": b"item,count\nPOISON lamp,7\n"}, body=body)
    worker = IngestWorker(settings, PoisonEmbedder())
    worker.large_file_chunks = 8
    failed = worker.run(docs)
    assert [(o.path, o.status) for o in failed.outcomes] == [("docs/order.eml", "failed")]
    again = IngestWorker(settings, HashEmbedder())
    again.large_file_chunks = 8
    rerun = again.run(docs)
    assert [(o.path, o.status) for o in rerun.outcomes] == [("docs/order.eml", "updated")]
    assert {path for path, _ in chunk_texts(settings)} == {"docs/order.eml", "docs/order.eml/stock.csv"}
