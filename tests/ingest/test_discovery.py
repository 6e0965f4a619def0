"""What a run may remove: only documents whose file is really gone from a folder listed whole.

A folder that cannot be listed or entered, or a file that cannot be stat'ed or read, keeps
its documents; the run reports each such error once and `rag ingest` exits with 3. The
runs that meet them are made without the right to pass file permissions (`unprivileged`).
"""

from __future__ import annotations

import json
from pathlib import Path

from rag.store import LocalCatalog
from tests.unprivileged import Unprivileged

TEXTS = {
    "a.md": "Alpine lakes freeze from the shore inwards.",
    "locked.md": "A note nobody may read any more.",
    "gone.md": "A note that is deleted between the runs.",
    "shut/b.md": "Barley is sown in early spring.",
    "shut/deeper/c.md": "Copper turns green in damp air.",
    "blind/d.md": "Dunes move a few metres a year.",
}


def indexed(work: Path) -> set[str]:
    store = LocalCatalog(work / "indexes").open("default", readonly=True)
    try:
        return {record.display for record in store.files().values()}
    finally:
        store.close()


def ingest(unprivileged: Unprivileged, work: Path, path: str = "docs") -> tuple[int, dict[str, object]]:
    r = unprivileged.rag("ingest", path, "--json", cwd=work)
    assert r.stdout, r.stderr
    return r.returncode, json.loads(r.stdout)


def test_what_cannot_be_read_keeps_its_documents(unprivileged: Unprivileged, shared_tmp: Path) -> None:
    docs = shared_tmp / "docs"
    for name, text in TEXTS.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text + "\n")
    code, summary = ingest(unprivileged, shared_tmp)
    assert code == 0 and summary["added"] == len(TEXTS), summary

    (docs / "gone.md").unlink()
    (docs / "locked.md").chmod(0)  # unchanged, but unreadable
    (docs / "shut").chmod(0)  # cannot be listed
    (docs / "blind").chmod(0o444)  # listed, but its files cannot be stat'ed
    code, summary = ingest(unprivileged, shared_tmp)
    assert code == 3, summary
    assert sorted(summary["failures"], key=str) == [  # type: ignore[call-overload]
        {"path": "docs/blind/d.md", "reason": "permission denied"},
        {"path": "docs/locked.md", "reason": "permission denied"},
        {"path": "docs/shut", "reason": "permission denied"},
    ]
    assert (summary["removed"], summary["unchanged"]) == (1, 1)  # gone.md; a.md
    assert indexed(shared_tmp) == {f"docs/{name}" for name in TEXTS} - {"docs/gone.md"}

    for path in ("locked.md", "shut", "blind"):
        (docs / path).chmod(0o755)
    code, summary = ingest(unprivileged, shared_tmp)
    assert code == 0 and summary["unchanged"] == len(TEXTS) - 1 and summary["removed"] == 0, summary


# What an ingest job of the server runs.
WORKER_RUN = """
import json, sys
from pathlib import Path
from ingest.worker import IngestWorker
from rag.config import load_settings
print(json.dumps(IngestWorker(load_settings()).run(Path(sys.argv[1])).summary()))
"""


def test_a_root_that_cannot_be_listed_removes_nothing(unprivileged: Unprivileged, shared_tmp: Path) -> None:
    docs = shared_tmp / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("Alpine lakes freeze from the shore inwards.\n")
    (docs / "b.md").write_text("Barley is sown in early spring.\n")
    assert ingest(unprivileged, shared_tmp)[0] == 0
    docs.chmod(0)
    r = unprivileged.python("-c", WORKER_RUN, "docs", cwd=shared_tmp)
    assert r.returncode == 0, r.stderr
    denied = [{"path": "docs", "reason": "permission denied"}]
    summary = json.loads(r.stdout)
    assert summary["removed"] == 0 and summary["failures"] == denied, summary
    assert indexed(shared_tmp) == {"docs/a.md", "docs/b.md"}
    code, summary = ingest(unprivileged, shared_tmp)
    assert code == 3 and summary["removed"] == 0 and summary["failures"] == denied, summary
