"""Plain data passed between the core's parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CONTEXT_HEADER_CHARS = 100  # about 25 word pieces at most


@dataclass(frozen=True)
class Chunk:
    """A piece of a document, small enough for the embedder to read whole."""

    text: str
    path: str
    ordinal: int = 0
    page_start: int | None = None
    page_end: int | None = None
    heading: str = ""

    @property
    def title(self) -> str:
        """The document's title: its first heading, else its file name."""
        if self.heading:
            return self.heading.split(" > ", 1)[0]
        stem = self.path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        return stem.replace("_", " ").replace("-", " ").strip()

    @property
    def context(self) -> str:
        """The chunk as it is embedded and indexed: a header of the document's title and
        heading path, then the text (no header when the text already starts with it)."""
        header = self.heading or self.title
        last = header.rsplit(" > ", 1)[-1]
        if not header or self.text.lstrip("# ").startswith(last):
            return self.text
        if len(header) > CONTEXT_HEADER_CHARS:  # kept short: it shares the embedder's window
            header = header[:CONTEXT_HEADER_CHARS].rsplit(" ", 1)[0] + "…"
        return f"{header}\n\n{self.text}"

    @property
    def pages(self) -> str:
        if self.page_start is None:
            return ""
        if self.page_end is None or self.page_end == self.page_start:
            return str(self.page_start)
        return f"{self.page_start}-{self.page_end}"


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its score for the question (higher is better), and what each
    search method made of it (`scores`: e.g. dense cosine, BM25, term coverage, fused)."""

    id: int
    chunk: Chunk
    score: float
    scores: dict[str, float] = field(default_factory=dict, compare=False)

    def row(self, rank: int) -> dict[str, Any]:
        """The hit as `rag search` and `POST /search` show it, at `rank` (from 1)."""
        return {
            "rank": rank,
            "id": self.id,
            "path": self.chunk.path,
            "pages": self.chunk.pages,
            "heading": self.chunk.heading,
            "score": round(self.score, 4),
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "text": self.chunk.text,
        }


@dataclass
class Source:
    """A chunk as shown to the user, numbered as in the prompt."""

    number: int
    path: str
    page: int | None
    pages: str
    heading: str
    snippet: str
    score: float
    cited: bool = False
    text: str = field(default="", repr=False)
    #: Character spans of `text` that back the answer (each checked to be in the text).
    spans: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Answer:
    """What a question gets back."""

    text: str
    sources: list[Source]
    usage: Usage
    timings: dict[str, float]
    finish_reason: str = "stop"
    found_context: bool = True
    #: True when the service answered that its documents do not say (the sources are then
    #: the closest passages, to see also).
    abstained: bool = False
    language: str = "en"
    #: Each sentence of the answer and the sources that back it (see rag.grounding.attribution).
    sentences: list[Any] = field(default_factory=list)
    #: What the model wrote, before citations were rewritten from the attribution.
    draft: str = ""

    @property
    def unsupported(self) -> list[str]:
        return [s.text for s in self.sentences if getattr(s, "checked", False) and not s.supported]
