"""Ingest jobs: queued by POST /ingest, run in arrival order by one background thread.

Each job ingests one folder or file into one index with the same IngestWorker as
`rag ingest`, so it is incremental and commits as the CLI does; the server's pipeline
reopens the index by itself once the job has committed. Jobs live in memory only: queued
and running jobs are always kept, finished ones up to `history`.

Only one ingest may write to an index at a time. A job whose index is held by another
process (a `rag ingest` or `rag ingest --watch`) waits up to `lock_wait` seconds for it,
then fails with that reason. When the server stops, the running job stops after the file
it is on (what was written until then is kept) and queued jobs fail.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ingest.worker import FileOutcome, IngestReport, IngestWorker
from rag.config import Settings
from rag.errors import BusyError, IndexLockedError, NotReadyError, RagError
from rag.util import redact_paths

if TYPE_CHECKING:
    from rag.embedders.base import Embedder

logger = logging.getLogger(__name__)

JobStatus = Literal["queued", "running", "done", "failed"]
HISTORY = 100  # finished jobs kept for GET /ingest
MAX_QUEUED = 100  # more queued jobs than this are refused with 429
LOCK_WAIT = 60.0  # seconds a job waits for another ingest of its index to end
LOCK_POLL = 0.5


class JobCancelled(BaseException):
    """Raised into a running ingest when the server stops. Not an Exception, so that the
    worker does not take it for one file's failure: it ends the run, which commits."""


@dataclass
class Job:
    """One ingest job: what it ingests, where it stands, and at the end what it did."""

    id: str
    index: str
    root: Path
    source: dict[str, Any]
    created_at: float
    status: JobStatus = "queued"
    started_at: float | None = None
    finished_at: float | None = None
    files_total: int | None = None
    files_done: int = 0
    chunks: int = 0
    outcomes: list[FileOutcome] = field(default_factory=list)
    summary: dict[str, object] | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "ingest.job",
            "status": self.status,
            "index": self.index,
            "source": self.source,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "progress": {
                "files_done": self.files_done,
                "files_total": self.files_total,
                "chunks": self.chunks,
            },
            "files": [
                {"path": o.path, "status": o.status, "chunks": o.chunks, "reason": o.reason}
                for o in self.outcomes
            ],
            "summary": self.summary,
            "error": self.error,
        }


class JobObserver:
    """Feeds a job's progress from the worker; stops the run when the server stops."""

    def __init__(self, job: Job, lock: threading.Lock, stop: threading.Event) -> None:
        self.job, self.lock, self.stop = job, lock, stop

    def started(self, files: int) -> None:
        self._check()
        with self.lock:
            self.job.files_total = files

    def file_done(self, outcome: FileOutcome) -> None:
        with self.lock:
            self.job.files_done += 1
            self.job.chunks += outcome.chunks if outcome.status in ("added", "updated") else 0
            self.job.outcomes.append(outcome)
        self._check()

    def _check(self) -> None:
        if self.stop.is_set():
            raise JobCancelled


class JobRunner:
    """The job registry and its one worker thread (started with the first job)."""

    def __init__(self, settings: Settings, *, history: int = HISTORY, lock_wait: float = LOCK_WAIT) -> None:
        self.settings = settings
        self.history = history
        self.lock_wait = lock_wait
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: queue.SimpleQueue[tuple[Job, Embedder] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._worker: IngestWorker | None = None  # the running job's

    def admit(self) -> None:
        """Refuse (BusyError, NotReadyError) what `submit` would refuse now: before a job's
        files are read."""
        with self._lock:
            self._admit()

    def submit(
        self,
        root: Path,
        index: str,
        source: dict[str, Any],
        embedder: Embedder,
        prepare: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Queue a job that ingests `root` into `index`; returns the job as queued. `prepare`
        runs once the job is admitted, before it is queued (it puts uploaded files in place):
        a job refused has done nothing."""
        with self._lock:
            self._admit()
            if prepare is not None:
                prepare()
            job = Job(uuid.uuid4().hex, index, root, source, time.time())
            self._jobs[job.id] = job
            self._trim()
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="ingest-jobs", daemon=True)
                self._thread.start()
            self._queue.put((job, embedder))
            logger.info("ingest job queued id=%s index=%s root=%s", job.id, index, root)
            return job.to_dict()

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job.to_dict() if job else None

    def recent(self) -> list[dict[str, Any]]:
        """Every job kept, newest first."""
        with self._lock:
            return [job.to_dict() for job in reversed(self._jobs.values())]

    def close(self, timeout: float = 10.0) -> None:
        """Stop: the running job ends at once (its file being read is abandoned, the
        files done until then are kept), queued jobs fail."""
        self._stop.set()
        self._queue.put(None)
        worker = self._worker
        if worker is not None:
            worker.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("ingest job still running at shutdown; left to end with the process")
        with self._lock:
            for job in self._jobs.values():
                if job.status == "queued":
                    self._fail(job, "the server stopped before the job ran")

    def _admit(self) -> None:
        if self._stop.is_set():
            raise NotReadyError("the server is shutting down")
        if sum(1 for j in self._jobs.values() if j.status == "queued") >= MAX_QUEUED:
            raise BusyError(f"{MAX_QUEUED} ingest jobs are already queued; retry later")

    # -- the worker thread ---------------------------------------------------------

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            job, embedder = item
            if self._stop.is_set():
                with self._lock:
                    self._fail(job, "the server stopped before the job ran")
                continue
            self._run(job, embedder)

    def _run(self, job: Job, embedder: Embedder) -> None:
        with self._lock:
            job.status, job.started_at = "running", time.time()
        try:
            report = self._ingest(job, embedder)
        except JobCancelled:
            reason = "stopped: the server shut down (files done until then are kept)"
        except RagError as exc:
            reason = str(exc)
        except Exception as exc:  # reported on the job; the thread goes on with the next one
            logger.exception("ingest job failed id=%s", job.id)
            reason = f"{type(exc).__name__}: {exc}"
        else:
            with self._lock:
                job.outcomes = list(report.outcomes)
                job.summary = report.summary()
                job.status, job.finished_at = "done", time.time()
            logger.info("ingest job done id=%s %s", job.id, job.summary)
            return
        logger.warning("ingest job failed id=%s reason=%s", job.id, reason)
        with self._lock:
            self._fail(job, redact_paths(reason))  # shown to every client: no server folder

    def _ingest(self, job: Job, embedder: Embedder) -> IngestReport:
        worker = self._worker = IngestWorker(self.settings, embedder)
        if self._stop.is_set():  # closed while this job was being set up
            worker.stop()
        observer = JobObserver(job, self._lock, self._stop)
        deadline = time.monotonic() + self.lock_wait
        while True:
            try:
                # Never out of the allowed folders, whatever links lie inside them.
                confine = (
                    self.settings.server.ingest_roots if job.source.get("type") == "path" else [job.root]
                )
                return worker.run(job.root, job.index, observer, confine=confine)
            except IndexLockedError as exc:
                if time.monotonic() >= deadline:
                    raise IndexLockedError(f"{exc}; waited {self.lock_wait:g}s, retry later") from exc
                if self._stop.wait(LOCK_POLL):
                    raise JobCancelled from exc

    def _fail(self, job: Job, reason: str) -> None:
        job.status, job.error, job.finished_at = "failed", reason, time.time()

    def _trim(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.status in ("done", "failed")]
        for job_id in finished[: max(0, len(finished) - self.history)]:
            del self._jobs[job_id]
