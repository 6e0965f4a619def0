"""Answer presence: whether the passages hold what a question asks, not only its topic.

    found = presence("When did the crisis begin?", sources)  # found.score in [0, 1]

A passage on the right subject often lacks the asked fact. Three things are looked for in
a short window of each passage (a sentence and its neighbours), and the best window counts:

1. **The question's terms together.** The share of the question's terms (stemmed, stop
   words out) the window holds, names and exact tokens weighing more: terms spread over
   a long passage do not make an answer.
2. **Its exact tokens.** Numbers, dates, commands and names the question gives must be
   found as they are in that window.
3. **Something of the asked kind** (`question_kind`): a date or year for *when/quand*, a
   number for *how many/combien*, a name for *who/qui* and *where/où*, that is not one of
   the question's own words. A window without one scores `KIND_MISSING` of its terms.
   How-to, why, yes/no and which/what questions are told too, but no one kind of words
   answers them: their terms decide.

Passages in another language than the question's are not judged by words (a French
question over English passages): with no passage in the question's language the score
is 1, and the other tests of answerability decide.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from rag.analysis import Language, analyze, claim_tokens, detect_language, fold, held_tokens, is_exact, words
from rag.grounding.sentences import Piece, split_sentences

if TYPE_CHECKING:
    from rag.types import Source

Kind = Literal["when", "count", "who", "where", "how-to", "why", "yes/no", "which", "other"]
#: Kinds whose answer is a date, a number or a name, looked for beside the question's terms.
_EVIDENT = ("when", "count", "who", "where")

#: A window without anything of the asked kind scores this share of its terms' score.
KIND_MISSING = 0.5
NAME_WEIGHT = 2.0  # a name or an exact token of the question counts this many plain terms

_KINDS: list[tuple[Kind, re.Pattern[str]]] = [
    (
        "count",
        re.compile(
            r"^(?:how (?:many|much)|combien|what (?:percentage|proportion|number)|"
            r"quel(?:le)? (?:est le )?(?:nombre|pourcentage|proportion|part)|"
            r"quel est le (?:nombre|montant|prix|co[uû]t))\b"
        ),
    ),
    (
        "when",
        re.compile(
            r"^(?:when|quand|depuis quand|jusqu'[àa] quand|(?:in |during )?(?:what|which) "
            r"(?:year|date|century|decade|month|day|period)|(?:en |dans |à |a |depuis )?"
            r"quel(?:le)?s? (?:ann[ée]e|date|si[èe]cle|d[ée]cennie|mois|jour|[ée]poque|p[ée]riode))\b"
        ),
    ),
    ("who", re.compile(r"^(?:who|whom|whose|qui|par qui|pour qui|à qui|a qui|de qui|avec qui)\b")),
    (
        "where",
        re.compile(
            r"^(?:where|o[uù]|d'o[uù]|par o[uù]|(?:in |from )?(?:what|which) (?:country|city|"
            r"town|region|state|place|continent)|(?:dans |en |de )?quel(?:le)? (?:pays|ville|"
            r"r[ée]gion|lieu|endroit|continent|d[ée]partement))\b"
        ),
    ),
    ("how-to", re.compile(r"^(?:how (?:do|does|can|could|should|would|to|is|are)|comment)\b")),
    ("why", re.compile(r"^(?:why|pourquoi)\b")),
    (
        "yes/no",
        re.compile(
            r"^(?:is|are|was|were|does|do|did|can|could|should|will|would|has|have|"
            r"est-ce qu|y a-t-il|peut-on|faut-il|doit-on|existe-t-il)"
        ),
    ),
    ("which", re.compile(r"^(?:which|what|quel|quelle|quels|quelles|que|qu'est-ce)\b")),
]
_LEAD = re.compile(r"^(?:(?:and|but|so|et|mais|donc|alors|selon [^,]+,|according to [^,]+,)\s+)+")


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


_MONTHS = _set(
    """january february march april may june july august september october november december
    janvier fevrier mars avril mai juin juillet aout septembre octobre novembre decembre"""
)
_YEAR = re.compile(
    r"\b(?:1[0-9]{3}|20[0-9]{2})s?\b|\b\d{1,2}(?:st|nd|rd|th|e|er)?\s+"
    r"(?:century|si[eè]cle)\b|\b[ivxlc]+(?:e|er|eme)\s+si[eè]cle\b|"
    r"\b\d{1,4}\s*(?:bc|ad|av\.? j\.?-c\.?)\b"
)
_NUMBER_WORDS = _set(
    """two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty
    fifty hundred hundreds thousand thousands million millions billion billions dozen dozens
    half deux trois quatre cinq six sept huit neuf dix onze douze quinze vingt trente quarante
    cinquante soixante cent cents mille million millions milliard milliards douzaine
    moitie"""
)
_NUMBER = re.compile(r"\d")
_CAPITALIZED = re.compile(r"(?<![\w'’])[A-ZÀ-ÖØ-Þ][\w'’-]*")


@dataclass(frozen=True)
class Presence:
    """How well the best window holds what the question asks (`score`, 0 to 1)."""

    score: float
    kind: Kind
    terms: float = 0.0  # the best window's share of the question's terms (weighted)
    exact: float = 1.0  # its share of the question's exact tokens
    kind_found: bool = True
    judged: bool = True  # False: no passage in the question's language


def question_kind(question: str) -> Kind:
    """What a question asks for, from its first words, in English or French."""
    text = _LEAD.sub("", " ".join(fold(question).replace("’", "'").split()))
    for kind, pattern in _KINDS:
        if pattern.search(text):
            return kind
    return "other"


def presence(question: str, sources: Sequence[Source]) -> Presence:
    """The best window's score over the passages (module docstring)."""

    language = detect_language(question)
    kind = question_kind(question)
    weights = _term_weights(question, language)
    exact = _exact_tokens(question)
    own = set(map(fold, words(question)))
    best: Presence | None = None
    for source in sources:
        if not source.text or detect_language(source.text) != language:
            continue
        pieces = split_sentences(source.text)
        # Each sentence read once; a window's terms and tokens are its sentences'.
        terms = [set(analyze(p.text, language)) for p in pieces]
        held = [held_tokens(p.text) if exact else set() for p in pieces]
        for i in range(len(pieces)):
            around = slice(max(0, i - 1), i + 2)
            window = " ".join(p.text for p in pieces[around])
            found = _window(
                window, kind, weights, exact, own, set().union(*terms[around]), set().union(*held[around])
            )
            if best is None or found.score > best.score:
                best = found
    return best or Presence(1.0, kind, judged=False)


def relevance(question: str, window: str) -> float:
    """The share of the question's terms (weighted as in `presence`) `window` holds; 1 when
    the window is in another language than the question (words cannot tell)."""
    language = detect_language(question)
    if detect_language(window) != language:
        return 1.0
    weights = _term_weights(question, language)
    total = sum(weights.values())
    terms = set(analyze(window, language))
    return sum(w for t, w in weights.items() if t in terms) / total if total else 1.0


def _window(
    window: str,
    kind: Kind,
    weights: dict[str, float],
    exact: set[str],
    own: set[str],
    terms: set[str],
    held: set[str],
) -> Presence:
    """A window's score, from its text, its terms and its exact tokens."""
    total = sum(weights.values())
    share = sum(w for t, w in weights.items() if t in terms) / total if total else 0.0
    exact_share = sum(t in held for t in exact) / len(exact) if exact else 1.0
    kind_found = has_kind(kind, window, own)
    score = share * exact_share * (1.0 if kind_found else KIND_MISSING)
    return Presence(score, kind, share, exact_share, kind_found)


def has_kind(kind: Kind, text: str, own: set[str]) -> bool:
    """Whether `text` holds something of the asked kind that is not one of the question's
    own (folded) words `own`."""
    if kind not in _EVIDENT:  # a yes/no, a how-to, a why: no one kind of words answers them
        return True
    folded = fold(text)
    if kind == "when":
        if any(m.group() not in own for m in _YEAR.finditer(folded)):
            return True
        return any(w in _MONTHS and w not in own for w in words(folded))
    if kind == "count":
        found = words(folded)
        return any((_NUMBER.search(w) or w in _NUMBER_WORDS) and w not in own for w in found)
    # who, where: a name (a capitalized word, not one of the question's, not a sentence's
    # first word unless it is not a stop word of either language)
    return any(
        fold(m.group()) not in own and not _sentence_start(text, m.start())
        for m in _CAPITALIZED.finditer(text)
    )


def _sentence_start(text: str, at: int) -> bool:
    before = text[:at].rstrip()
    return not before or before[-1] in '.!?:;"«(\n'


@lru_cache(maxsize=256)
def _term_weights(question: str, language: Language) -> dict[str, float]:
    """The question's terms, names and exact tokens weighing `NAME_WEIGHT` (the same dict for
    the same question: read it, never change it)."""
    names = {
        fold(m.group()) for m in _CAPITALIZED.finditer(question) if not _sentence_start(question, m.start())
    }
    weights: dict[str, float] = {}
    for word in words(question):
        stems = analyze(word, language)
        if not stems:
            continue
        heavy = fold(word) in names or is_exact(word)
        weights[stems[0]] = max(weights.get(stems[0], 0.0), NAME_WEIGHT if heavy else 1.0)
    return weights


def _exact_tokens(question: str) -> set[str]:
    """Numbers, commands, options and paths of the question: found as they are (French
    inversions such as "a-t-elle" or "est-ce" are words, not exact tokens)."""
    return {t for t in claim_tokens(question) if is_exact(t) and not _INVERSION.search(t)}


_INVERSION = re.compile(r"-(?:t-)?(?:il|elle|on|ils|elles|je|tu|nous|vous|ce|ci|la)$")
_ANAPHOR = re.compile(
    r"^(?:it|its|he|his|she|her|they|their|this|these|those|there|il|elle|ils|elles|son|sa|ses|"
    r"leur|leurs|ce|cet|cette|ces|celui|celle|on|y)\b",
    re.IGNORECASE,
)


def anchored(pieces: Sequence[Piece], at: int) -> str:
    """Sentence `at` of `pieces`, with the one before it when it starts by referring back
    ("It is 3,357 metres high.", "Il culmine à..."): what its question's terms may be in."""
    text = pieces[at].text
    if at > 0 and _ANAPHOR.match(text):
        return f"{pieces[at - 1].text} {text}"
    return text
