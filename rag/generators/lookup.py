"""Prompt-lookup decoding: greedy answers that copy their passages, several tokens a step.

A grounded answer repeats its passages. After each token, the last few tokens of the
prompt and answer so far are looked up where they occurred before; the tokens that
followed there are the draft. The model reads the pending token and the draft in one
batch (on a large model or a GPU about the cost of one token; with the packaged 135M
model on a CPU nearly the cost of each, see docs/models.md), and gives its greedy choice at
every position: the draft is kept up to the first position where it differs, the
model's choice there is the next pending token, and the rejected positions are removed
from the KV cache. Nothing is ever kept that the model did not choose itself.

Identical output: with flash attention, llama.cpp's CPU backend computes a position's
logits bit for bit alike whether it is read alone or in a batch (without it, attention
over a batch runs another kernel, and logits move by up to half a unit, enough to flip
a close choice). The model is loaded with flash attention for that reason, and the
choice at each position is the argmax of its logits after the same repeat penalty as
llama.cpp's sampler applies, so the answer is token for token the plain greedy one.

`LookupLlama` is llama-cpp-python's `Llama` with this loop in `generate` for greedy
requests (temperature 0); completion, stop strings and streaming stay llama-cpp-python's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from llama_cpp import Llama

logger = logging.getLogger(__name__)

MAX_NGRAM = 3  # longest run of last tokens looked up
MIN_NGRAM = 2  # a single token recurs too often to predict what follows it


class NgramIndex:
    """Where each short run of tokens last occurred, kept up to date as tokens are added."""

    def __init__(
        self, tokens: Sequence[int] = (), max_ngram: int = MAX_NGRAM, min_ngram: int = MIN_NGRAM
    ) -> None:
        self.tokens: list[int] = []
        self.max_ngram, self.min_ngram = max_ngram, min_ngram
        #: n-gram -> the position right after its latest occurrence that has a successor.
        self._after: dict[tuple[int, ...], int] = {}
        self.extend(tokens)

    def extend(self, tokens: Sequence[int]) -> None:
        for token in tokens:
            end = len(self.tokens)  # the n-grams ending here now have a successor: `token`
            for n in range(self.min_ngram, self.max_ngram + 1):
                if end >= n:
                    self._after[tuple(self.tokens[end - n : end])] = end
            self.tokens.append(token)

    def draft(self, limit: int) -> list[int]:
        """Up to `limit` tokens that followed the latest earlier occurrence of the longest
        run of last tokens that occurred before; none if no such run."""
        end = len(self.tokens)
        for n in range(min(self.max_ngram, end), self.min_ngram - 1, -1):
            start = self._after.get(tuple(self.tokens[end - n :]))
            if start is not None:
                return self.tokens[start : min(start + limit, end)]
        return []


@dataclass
class LookupStats:
    """Drafted and accepted tokens, over the generations of one model."""

    steps: int = 0
    drafted: int = 0
    accepted: int = 0


class LookupLlama(Llama):
    """`Llama` whose greedy generations use prompt lookup; `lookup`: tokens drafted per step."""

    def __init__(self, *args: Any, lookup: int = 10, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lookup = lookup
        self.stats = LookupStats()

    def generate(self, tokens: Sequence[int], *args: Any, **kwargs: Any) -> Any:
        # Only plain greedy decoding is looked up: sampling, grammars and logit processors
        # choose otherwise than an argmax, and go llama-cpp-python's way.
        greedy = kwargs.get("temp", 0.8) == 0.0 and not args
        plain = all(kwargs.get(k) is None for k in ("logits_processor", "grammar", "stopping_criteria"))
        others = all(float(kwargs.get(k, 0.0)) == 0.0 for k in ("frequency_penalty", "presence_penalty"))
        if self.lookup <= 0 or not (greedy and plain and others) or not kwargs.get("reset", True):
            return super().generate(tokens, *args, **kwargs)
        return self._greedy(list(tokens), float(kwargs.get("repeat_penalty", 1.0)))

    def _greedy(self, prompt: list[int], penalty: float) -> Iterator[int]:
        self._read_prompt(prompt)
        # The prompt is read on `n_threads_batch` threads, the answer on `n_threads`, its
        # batches of guesses too: they are a step of decoding, not a prompt.
        self._ctx.set_n_threads(self.n_threads, self.n_threads)
        try:
            yield from self._decode(prompt, penalty)
        finally:
            self._ctx.set_n_threads(self.n_threads, self.n_threads_batch)
            # The last logits may be those of a rejected guess: a prompt that is all cached
            # must still be read again before sampling from it.
            self._requires_eval = True

    def _decode(self, prompt: list[int], penalty: float) -> Iterator[int]:
        index = NgramIndex(prompt)
        made: list[int] = []
        pending = self._choose(-1, made, penalty)
        limit = self.lookup  # shorter after a miss, longer again while guesses hold
        while True:
            yield pending
            made.append(pending)
            index.extend([pending])
            room = self._n_ctx - self.n_tokens - 1
            draft = index.draft(min(limit, room - 1)) if room > 1 else []
            past = self.n_tokens
            batch = [pending, *draft]
            self._batch.set_batch(batch=batch, n_past=past, logits_all=True)
            self._ctx.decode(self._batch)
            self.input_ids[past : past + len(batch)] = batch
            kept: list[int] = []
            pending = self._choose(0, made, penalty)
            for i, guess in enumerate(draft, start=1):
                if pending != guess:
                    break
                kept.append(guess)
                pending = self._choose(i, [*made, *kept], penalty)
            self.n_tokens = past + 1 + len(kept)
            self._ctx.kv_cache_seq_rm(-1, self.n_tokens, -1)  # the rejected guesses
            if draft:
                full = len(kept) == len(draft)
                limit = min(self.lookup, 2 * limit) if full else max(1, len(kept) + 1)
            self.stats.steps += 1
            self.stats.drafted += len(draft)
            self.stats.accepted += len(kept)
            for token in kept:
                yield token
                made.append(token)
            index.extend(kept)

    def _read_prompt(self, prompt: list[int]) -> None:
        """Evaluate the prompt after the longest prefix llama.cpp still holds (at least its
        last token, whose logits give the first choice), as `Llama.generate` does."""
        held = 0
        for a, b in zip(self.input_ids[: self.n_tokens].tolist(), prompt, strict=False):
            if a != b:
                break
            held += 1
        held = min(held, len(prompt) - 1)
        if held <= 0 or not self._ctx.kv_cache_seq_rm(-1, held, -1):
            self.reset()  # type: ignore[no-untyped-call]
            held = 0
        self.n_tokens = held
        self.eval(prompt[held:])

    def _choose(self, row: int, made: Sequence[int], penalty: float) -> int:
        """The greedy token at `row` of the last batch, after llama.cpp's repeat penalty
        over the last `last_n_tokens_size` tokens generated (the prompt is not counted)."""
        logits = np.ctypeslib.as_array(self._ctx.get_logits_ith(row), shape=(self._n_vocab,))
        recent = made[-self.last_n_tokens_size :] if self.last_n_tokens_size > 0 else ()
        if penalty != 1.0 and recent:
            ids = np.fromiter(set(recent), dtype=np.intc)
            logits = logits.copy()
            seen = logits[ids]
            logits[ids] = np.where(seen <= 0, seen * np.float32(penalty), seen / np.float32(penalty))
        return int(np.argmax(logits))
