"""Plain data passed between the core's parts."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    def pages(self) -> str:
        if self.page_start is None:
            return ""
        if self.page_end is None or self.page_end == self.page_start:
            return str(self.page_start)
        return f"{self.page_start}-{self.page_end}"


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its similarity to the question."""

    id: int
    chunk: Chunk
    score: float


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
