"""Prompts that always fit the model's context.

The budget is the context size minus the tokens reserved for the answer; the system
prompt, the chat template, the history and the question are counted with the model's
own tokenizer on the rendered prompt, never estimated. Sources go in best first until
the budget is full; the one that does not fit whole is cut at a sentence boundary or
left out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from rag.errors import ContextLengthError
from rag.generation import Generator, Message, RenderedPrompt
from rag.types import Hit, Source

SYSTEM_PROMPT = (
    "You are a helpful assistant that answers questions about the user's documents. "
    "Answer only from the numbered sources given with the question, and cite the sources "
    "you use like [1] or [2]. If the sources do not contain the answer, say that the "
    "documents do not say."
)
NO_CONTEXT_SYSTEM_PROMPT = "You are a helpful assistant. Answer briefly."
MIN_CUT_TOKENS = 24
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass
class BuiltPrompt:
    messages: list[Message]
    rendered: RenderedPrompt
    sources: list[Source]
    history_turns: int

    @property
    def n_tokens(self) -> int:
        return len(self.rendered.tokens)


class PromptBuilder:
    """Builds the chat messages for a question, its sources and its history."""

    def __init__(self, generator: Generator, system_prompt: str = SYSTEM_PROMPT) -> None:
        self.generator = generator
        self.system_prompt = system_prompt

    def build(
        self,
        question: str,
        hits: Sequence[Hit],
        history: Sequence[Message] = (),
        *,
        max_tokens: int,
        system_prompt: str | None = None,
    ) -> BuiltPrompt:
        system = system_prompt or self.system_prompt
        budget = self.generator.n_ctx - max_tokens
        bare = self._messages(system, question, [], [])
        base = self.generator.count(bare)
        if base > budget:
            raise ContextLengthError(
                f"the question takes {base} tokens with the prompt, but only {budget} fit "
                f"(context {self.generator.n_ctx} minus {max_tokens} reserved for the answer)",
                tokens=base,
                limit=budget,
            )
        turns = self._fit_history(system, question, history, base + (budget - base) // 2)
        blocks: list[str] = []
        sources: list[Source] = []
        used = self.generator.count(self._messages(system, question, turns, []))
        for hit in hits:
            number = len(blocks) + 1
            block = _block(number, hit, hit.chunk.text)
            cost = self._block_cost(block)
            if used + cost > budget:
                cut = self._cut(number, hit, budget - used)
                if cut is not None:
                    blocks.append(cut)
                    sources.append(_source(number, hit))
                break
            blocks.append(block)
            sources.append(_source(number, hit))
            used += cost
        messages, rendered = self._settle(system, question, turns, blocks, sources, budget)
        return BuiltPrompt(messages, rendered, sources, len(turns) // 2)

    # -- budget ------------------------------------------------------------------

    def _fit_history(
        self, system: str, question: str, history: Sequence[Message], limit: int
    ) -> list[Message]:
        """The most recent turns that fit under `limit` tokens, oldest dropped first."""
        turns = [m for m in history if m.get("role") in ("user", "assistant") and m.get("content")]
        while turns and self.generator.count(self._messages(system, question, turns, [])) > limit:
            turns = turns[2:] if len(turns) > 1 else []
        return turns

    def _block_cost(self, block: str) -> int:
        return len(self.generator.render([{"role": "user", "content": block}]).tokens) - self._empty

    @cached_property
    def _empty(self) -> int:
        return len(self.generator.render([{"role": "user", "content": ""}]).tokens)

    def _cut(self, number: int, hit: Hit, room: int) -> str | None:
        """The longest sentence-bounded head of the chunk that fits in `room` tokens."""
        if room < MIN_CUT_TOKENS:
            return None
        sentences = _SENTENCE_END.split(hit.chunk.text)
        lo, hi, best = 1, len(sentences) - 1, None
        while lo <= hi:
            mid = (lo + hi) // 2
            block = _block(number, hit, " ".join(sentences[:mid]))
            if self._block_cost(block) <= room:
                best, lo = block, mid + 1
            else:
                hi = mid - 1
        return best

    def _settle(
        self,
        system: str,
        question: str,
        turns: list[Message],
        blocks: list[str],
        sources: list[Source],
        budget: int,
    ) -> tuple[list[Message], RenderedPrompt]:
        """Render exactly; token merges at block edges may cost a little more: drop blocks."""
        while True:
            messages = self._messages(system, question, turns, blocks)
            rendered = self.generator.render(messages)
            if len(rendered.tokens) <= budget or not blocks:
                return messages, rendered
            blocks.pop()
            sources.pop()

    @staticmethod
    def _messages(
        system: str, question: str, turns: Sequence[Message], blocks: Sequence[str]
    ) -> list[Message]:
        content = question
        if blocks:
            content = "Sources:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}"
        return [
            {"role": "system", "content": system},
            *({"role": m["role"], "content": m["content"]} for m in turns),
            {"role": "user", "content": content},
        ]


def _block(number: int, hit: Hit, text: str) -> str:
    chunk = hit.chunk
    where = chunk.path.rsplit("/", 1)[-1]
    if chunk.pages:
        where += f", page {chunk.pages}"
    if chunk.heading:
        where += f", {chunk.heading}"
    return f"[{number}] ({where})\n{text}"


def _source(number: int, hit: Hit) -> Source:
    chunk = hit.chunk
    snippet = " ".join(chunk.text.split())
    return Source(
        number=number,
        path=chunk.path,
        page=chunk.page_start,
        pages=chunk.pages,
        heading=chunk.heading,
        snippet=snippet[:240] + ("…" if len(snippet) > 240 else ""),
        score=round(hit.score, 4),
        text=chunk.text,
    )
