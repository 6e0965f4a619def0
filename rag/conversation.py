"""A conversation's memory: how each answered turn was prompted and what the model wrote.

A client sends the history back as it saw it: its questions, and the answers as shown
(citations filtered, sentences grounded). Given back to the model as it read and wrote
them instead, a follow-up's prompt begins with the tokens of the previous one and its
answer, which llama.cpp still holds: only the new passages and question are read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag.generators.base import Generator, Message
    from rag.store import StoreReader

TURNS_KEPT = 64  # answered turns remembered, so that a follow-up's prompt extends theirs


def conversation_of(store: StoreReader, generator: Generator) -> tuple[str, ...]:
    """Whose turns a remembered turn may stand for: the index (its name, its creation and
    its committed state) and the model. The same history sent against another index, or
    after the index changed, or to another model, is read as the client gives it: the
    passages of the first index never come along."""
    return (store.name, store.identity, str(store.generation), generator.name)


class Turns:
    """The last `kept` turns answered, each under its conversation and what the client saw
    of it (question and answer); shared by request threads."""

    def __init__(self, kept: int = TURNS_KEPT) -> None:
        self.kept = kept
        self._turns: OrderedDict[tuple[str, ...], tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(
        self, conversation: tuple[str, ...], question: str, answer: str, prompted: str, generated: str
    ) -> None:
        """Keep how a turn was prompted and what the model wrote, under what the client saw."""
        key = (*conversation, question, answer)
        with self._lock:
            self._turns[key] = (prompted, generated)
            self._turns.move_to_end(key)
            while len(self._turns) > self.kept:
                self._turns.popitem(last=False)

    def as_prompted(self, history: Sequence[Message], conversation: tuple[str, ...]) -> list[Message]:
        """The history as the model read and wrote it, for the turns remembered in this
        `conversation` (see `conversation_of`): each question with the passages it came
        with, each answer as generated; the others as the client gives them."""
        turns = [dict(m) for m in history]
        with self._lock:
            for user, reply in zip(turns, turns[1:], strict=False):
                if user.get("role") != "user" or reply.get("role") != "assistant":
                    continue
                found = self._turns.get((*conversation, user.get("content", ""), reply.get("content", "")))
                if found is not None:
                    user["content"], reply["content"] = found
        return turns

    def clear(self) -> None:
        """Forget every turn."""
        with self._lock:
            self._turns.clear()
