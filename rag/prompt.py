"""Prompts that always fit the model's context.

The budget is the context size minus the tokens reserved for the answer. Everything is
counted by the generator (llama.cpp: the GGUF's own chat template and tokenizer), each
part once; the finished prompt is counted exactly and never exceeds the budget. Sources
go in best first until the budget is full; the one that does not fit whole is cut at a
sentence boundary or left out. A source an earlier question of the history came with is
not repeated: it keeps its number there and is referred to as given above.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.errors import ContextLengthError
from rag.generators.base import Generator, Message
from rag.grounding.trim import GAP, trim_passage
from rag.replies import SYSTEM_PROMPT as SYSTEM_PROMPTS
from rag.types import Hit, Source
from rag.util import printable

SYSTEM_PROMPT = SYSTEM_PROMPTS["en"]  # the pipeline passes the question's language's
MIN_CUT_TOKENS = 24
# A history of more characters than this per token of room would not fit (English prose
# runs about 4 to a token), so it is not counted whole first.
_MAX_CHARS_PER_TOKEN = 8
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SOURCES, _QUESTION = "Sources:\n\n", "\n\nQuestion: "
GIVEN = ": given above."  # a passage's reference, where an earlier question came with it
_HEAD = re.compile(r"(?:^|\n\n)\[(\d+)\] \(([^\n]*?)\)(\n|" + re.escape(GIVEN) + ")")


@dataclass
class BuiltPrompt:
    messages: list[Message]
    #: The exact tokens of `messages`, counted by the generator.
    n_tokens: int
    sources: list[Source]
    history_turns: int


class PromptBuilder:
    """Builds the chat messages for a question, its sources and its history.

    Most prompts fit whole: the question alone and then the whole prompt are counted,
    nothing more. Otherwise each part is counted once: a pair of history turns or a
    source costs its own count plus a constant measured once (the template's frame
    around a message, the separators between sources). The prompt so chosen is then
    counted exactly, and sources dropped from the end while it does not fit.
    """

    def __init__(
        self, generator: Generator, system_prompt: str = SYSTEM_PROMPT, *, trim_chars: int = 0
    ) -> None:
        """`trim_chars`: each passage is shown as about this many characters around its
        best sentence for the question (rag.grounding.trim); 0 shows passages whole."""
        self.generator = generator
        self.system_prompt = system_prompt
        self.trim_chars = trim_chars
        self._constants: dict[str, int] = {}

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
        base = self.generator.count_tokens(self._messages(system, question, [], []))
        if base > budget:
            raise ContextLengthError(
                f"the question takes {base} tokens with the prompt, but only {budget} fit "
                f"(context {self.generator.n_ctx} minus {max_tokens} reserved for the answer)",
                tokens=base,
                limit=budget,
            )
        room = (budget - base) // 2  # for the history
        turns = [m for m in history if m.get("role") in ("user", "assistant") and m.get("content")]
        # Most prompts fit whole: one count says so. Else the history is fitted first...
        if turns:
            whole = self._whole(system, question, turns, hits, base, base + room)
            if whole is not None:
                return whole
        turns, used = self._fit_history(turns, room)
        # ...then the sources, all at once if they fit, else one by one.
        whole = self._whole(system, question, turns, hits, base + used, budget)
        if whole is not None:
            return whole
        used += base + (self._constant("sources_frame") if hits else 0)
        blocks: list[str] = []
        sources: list[Source] = []
        for (number, given), hit in zip(_numbers(hits, turns), hits, strict=True):
            block = self._block(number, given, question, hit)
            cost = self._block_cost(block)
            if used + cost > budget:
                cut = None if given else self._cut(number, hit, self._passage(question, hit), budget - used)
                if cut is not None:
                    blocks.append(cut)
                    sources.append(source_of(number, hit))
                break
            blocks.append(block)
            sources.append(source_of(number, hit))
            used += cost
        return self._settle(system, question, turns, blocks, sources, budget)

    # -- budget ------------------------------------------------------------------

    def _whole(
        self, system: str, question: str, turns: list[Message], hits: Sequence[Hit], counted: int, limit: int
    ) -> BuiltPrompt | None:
        """The prompt with every turn and every source, if it is within `limit` tokens.

        `counted`: the tokens of the prompt without these turns and sources. The prompt
        is not counted when their characters alone show that it cannot fit.
        """
        numbers = _numbers(hits, turns)
        blocks = [self._block(n, given, question, hit) for (n, given), hit in zip(numbers, hits, strict=True)]
        added = sum(len(m["content"]) for m in turns) + sum(len(b) for b in blocks)
        if added > (limit - counted) * _MAX_CHARS_PER_TOKEN:
            return None
        messages = self._messages(system, question, turns, blocks)
        n_tokens = self.generator.count_tokens(messages)
        if n_tokens > limit:
            return None
        sources = [source_of(n, hit) for (n, _), hit in zip(numbers, hits, strict=True)]
        return BuiltPrompt(messages, n_tokens, sources, len(turns) // 2)

    def _fit_history(self, turns: list[Message], room: int) -> tuple[list[Message], int]:
        """The most recent turns that fit in `room` tokens, and their cost.

        Turns are counted newest first, a question and its answer together, until the
        room is full; the oldest go two at a time, as they always have.
        """
        if not turns:
            return [], 0
        start, kept, total = len(turns), 0, 0
        for i in range(len(turns) - 1 - (len(turns) - 1) % 2, -1, -2):  # even starts, newest first
            total += self._turns_cost(turns[i : i + 2])
            if total > room:
                break
            start, kept = i, total
        return turns[start:], kept

    def _turns_cost(self, turns: Sequence[Message]) -> int:
        """What these messages add to a conversation: their content and the template's frame."""
        frame = {"role": "system", "content": ""}
        added = [{"role": m["role"], "content": m["content"]} for m in turns]
        return self.generator.count_tokens([frame, *added]) - self._constant("system_frame")

    def _block_cost(self, block: str) -> int:
        return self._text_cost(block) + self._constant("block_separator")

    def _text_cost(self, text: str) -> int:
        """Tokens `text` adds to a user message."""
        return self.generator.count_tokens([{"role": "user", "content": text}]) - self._constant("empty_user")

    def _constant(self, name: str) -> int:
        """Template and separator costs, measured once per builder."""
        value = self._constants.get(name)
        if value is None:
            value = self._constants[name] = self._measure(name)
        return value

    def _measure(self, name: str) -> int:
        count = self.generator.count_tokens
        if name == "empty_user":
            return count([{"role": "user", "content": ""}])
        if name == "system_frame":
            return count([{"role": "system", "content": ""}])
        sample, question = "[1] (notes.txt)\nA sample source.", "Why?"
        if name == "block_separator":
            return self._text_cost(f"{sample}\n\n{sample}") - 2 * self._text_cost(sample)
        if name == "sources_frame":  # "Sources:" and "Question:" around the question
            content = self._messages("", question, [], [sample])[-1]["content"]
            return self._text_cost(content) - self._text_cost(sample) - self._text_cost(question)
        raise KeyError(name)

    def _block(self, number: int, given: bool, question: str, hit: Hit) -> str:
        """A source as the model reads it: whole, or a reference to where it was given."""
        return (
            f"[{number}] ({_where(hit)}){GIVEN}"
            if given
            else _block(number, hit, self._passage(question, hit))
        )

    def _passage(self, question: str, hit: Hit) -> str:
        """What the model reads of a passage (the sources keep it whole)."""
        return trim_passage(question, hit.chunk.text, self.trim_chars)

    def _cut(self, number: int, hit: Hit, text: str, room: int) -> str | None:
        """The longest sentence-bounded head of the passage that fits in `room` tokens."""
        if room < MIN_CUT_TOKENS:
            return None
        sentences = _SENTENCE_END.split(text)
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
    ) -> BuiltPrompt:
        """Count exactly; token merges at the parts' edges may cost a little more than
        estimated: drop sources from the end, then the oldest turns, until it fits."""
        while True:
            messages = self._messages(system, question, turns, blocks)
            n_tokens = self.generator.count_tokens(messages)
            if n_tokens <= budget or not (blocks or turns):
                return BuiltPrompt(messages, n_tokens, sources, len(turns) // 2)
            if blocks:
                blocks.pop()
                sources.pop()
            else:
                turns = turns[2:] if len(turns) > 1 else []

    @staticmethod
    def _messages(
        system: str, question: str, turns: Sequence[Message], blocks: Sequence[str]
    ) -> list[Message]:
        content = question
        if blocks:
            content = _SOURCES + "\n\n".join(blocks) + f"{_QUESTION}{question}"
        return [
            {"role": "system", "content": system},
            *({"role": m["role"], "content": m["content"]} for m in turns),
            {"role": "user", "content": content},
        ]


def _where(hit: Hit) -> str:
    """Where a passage is from, on its head's one line (a file's name may hold line breaks:
    escaped, they cannot start a passage of their own)."""
    chunk = hit.chunk
    where = chunk.path.rsplit("/", 1)[-1]
    if chunk.pages:
        where += f", page {chunk.pages}"
    if chunk.heading:
        where += f", {chunk.heading}"
    return printable(where)


def _block(number: int, hit: Hit, text: str) -> str:
    return f"[{number}] ({_where(hit)})\n{text}"


def given_passages(turns: Sequence[Message]) -> dict[int, tuple[str, str]]:
    """The passages the conversation's questions came with, as the model read them:
    number -> (where, text); a later turn's passage takes the number from an earlier's."""
    given: dict[int, tuple[str, str]] = {}
    for turn in turns:
        content = turn.get("content", "")
        if turn.get("role") != "user" or not content.startswith(_SOURCES) or _QUESTION not in content:
            continue
        content = content[len(_SOURCES) : content.rindex(_QUESTION)]
        heads = list(_HEAD.finditer(content))
        for head, after in zip(heads, [*heads[1:], None], strict=True):
            if head.group(3) == "\n":  # a reference to an earlier turn defines nothing new
                text = content[head.end() : after.start() if after else len(content)]
                given[int(head.group(1))] = (head.group(2), text)
    return given


def _numbers(hits: Sequence[Hit], turns: Sequence[Message]) -> list[tuple[int, bool]]:
    """Each hit's number, and whether the conversation already gave it to the model.

    A passage an earlier question of the prompted history came with keeps its number
    there and is not repeated (the model still holds it; a follow-up reads only its new
    passages). The new ones are numbered after every number used before; with none given
    again, numbering starts at 1 as for a first question.
    """
    given = given_passages(turns)
    found: dict[int, int] = {}
    for i, hit in enumerate(hits):
        where = _where(hit)
        for number, (was, text) in given.items():
            pieces = [p.strip() for p in text.split(GAP.strip())]
            if was == where and number not in found.values() and all(p in hit.chunk.text for p in pieces):
                found[i] = number
                break
    after = max(given) if found else 0
    numbers = []
    for i in range(len(hits)):
        if i in found:
            numbers.append((found[i], True))
        else:
            after += 1
            numbers.append((after, False))
    return numbers


def source_of(number: int, hit: Hit) -> Source:
    """A retrieved chunk as shown to the user, numbered."""
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
