"""Does a passage really back a sentence? The strict check citation precision is judged by.

The service attributes a sentence to a passage by stemmed term share and embedding
similarity, with thresholds meant to let paraphrase through. Judging those citations with
the same scores would only repeat them. This check is stricter and of another kind: the
passage's own words, unstemmed (case and accents aside), must hold nearly all of the
sentence's content words, and every number and every command-like token (`--search`,
`/etc/apt`, `dpkg-divert`) of the sentence exactly: the claims a weak model gets wrong.
"""

from __future__ import annotations

import re

from rag.analysis import STOP_WORDS, detect_language, fold

MIN_SHARE = 0.8  # of the sentence's content words the passage must hold
_TOKEN = re.compile(r"(?:--?|/|~/)?\w(?:[\w./:@+'’-]*\w)?", re.UNICODE)
_CITATION = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")


_ELISION = re.compile(r"^(?:[cdjlmnst]|qu)['’]")


def tokens(text: str) -> list[str]:
    """Words, numbers and command-like tokens, lower case without accents or elisions."""
    plain = _CITATION.sub(" ", text.replace("`", " "))
    return [_ELISION.sub("", fold(t)) for t in _TOKEN.findall(plain)]


def is_exact(token: str) -> bool:
    """A token that must be found as it is: a number, or a command, option or path."""
    return any(c.isdigit() for c in token) or any(c in token for c in "-_/.@:")


def supports(passage: str, sentence: str, min_share: float = MIN_SHARE) -> bool:
    """Whether `passage` holds `sentence`'s claim word for word, as far as words can tell."""
    stop = STOP_WORDS[detect_language(sentence)]
    said = [t for t in tokens(sentence) if t not in stop]
    if not said:
        return False
    held = set(tokens(passage))
    held |= {part for t in held for part in re.split(r"[-_/.@:]", t) if part}
    if any(t not in held for t in said if is_exact(t)):
        return False
    return sum(t in held for t in said) / len(said) >= min_share
