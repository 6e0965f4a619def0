"""Does a passage really back a sentence? The strict check citation precision is judged by.

The service attributes a sentence to a passage by stemmed term share and embedding
similarity, with thresholds meant to let paraphrase through. Judging those citations with
the same scores would only repeat them. This check is stricter and of another kind: the
passage's own words, unstemmed (case and accents aside), must hold nearly all of the
sentence's content words, and every number and every command-like token (`--search`,
`/etc/apt`, `dpkg-divert`) of the sentence exactly: the claims a weak model gets wrong.
(The attribution asks the same of those exact tokens, but not the word coverage.)
"""

from __future__ import annotations

from rag.analysis import STOP_WORDS, claim_tokens, detect_language, held_tokens, is_exact

MIN_SHARE = 0.8  # of the sentence's content words the passage must hold


def supports(passage: str, sentence: str, min_share: float = MIN_SHARE) -> bool:
    """Whether `passage` holds `sentence`'s claim word for word, as far as words can tell."""
    stop = STOP_WORDS[detect_language(sentence)]
    said = [t for t in claim_tokens(sentence) if t not in stop]
    if not said:
        return False
    held = held_tokens(passage)
    if any(t not in held for t in said if is_exact(t)):
        return False
    return sum(t in held for t in said) / len(said) >= min_share
