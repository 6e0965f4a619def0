"""What an ingest run did, file by file, and who is told as it goes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal, Protocol

logger = logging.getLogger(__name__)

Status = Literal["added", "updated", "unchanged", "removed", "skipped", "failed"]
STATUSES: tuple[Status, ...] = ("added", "updated", "unchanged", "removed", "skipped", "failed")


@dataclass
class FileOutcome:
    path: str
    status: Status
    chunks: int = 0
    reason: str = ""
    key: str = field(default="", repr=False)  # the file's key in the index: what tells files apart


@dataclass
class IngestReport:
    """What a run did, file by file: each file once."""

    index: str
    outcomes: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def chunks_written(self) -> int:
        return sum(o.chunks for o in self.outcomes if o.status in ("added", "updated"))

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0

    def summary(self) -> dict[str, object]:
        return {
            "index": self.index,
            **{s: self.count(s) for s in STATUSES},
            "chunks": self.chunks_written,
            "seconds": round(self.seconds, 3),
            "failures": [{"path": o.path, "reason": o.reason} for o in self.outcomes if o.status == "failed"],
        }


class IngestObserver(Protocol):
    """Told of the run's progress (a progress bar, a job record)."""

    def started(self, files: int) -> None: ...

    def file_done(self, outcome: FileOutcome) -> None: ...


class RunBook:
    """Book-keeping of one run: every outcome goes through `done`, once per file."""

    def __init__(self, report: IngestReport, observer: IngestObserver | None) -> None:
        self.report = report
        self.observer = observer
        self.seen: set[str] = set()

    def done(self, outcome: FileOutcome) -> None:
        file = outcome.key or outcome.path
        if file in self.seen:  # never twice, whatever path led to it
            logger.warning("second outcome ignored path=%r status=%s", outcome.path, outcome.status)
            return
        self.seen.add(file)
        self.report.outcomes.append(outcome)
        if self.observer:
            self.observer.file_done(outcome)
