"""Text analysis for lexical search: language, words, stop words, stems, accents.

    analyze("Les enjeux des algorithmes publics")  ->  ["enjeux", "algorithm", "public"]

Words are lower-cased, stop words of the text's language dropped, the rest reduced to
their Snowball stem (PyStemmer) and stripped of accents, so that "juridiques",
"juridique" and "Juridique" are one term, and so are "été" and "ete". The language is
told by the share of French and English stop words; a text with too few of either is
taken for English, whose stemmer is the gentler of the two on foreign words.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from typing import Literal

Language = Literal["en", "fr"]
LANGUAGES: tuple[Language, ...] = ("en", "fr")
_STEMMERS = {"en": "english", "fr": "french"}

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_ELISION = re.compile(r"^(?:[cdjlmnst]|qu|jusqu|lorsqu|puisqu|quoiqu)['’]", re.IGNORECASE)


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOP_WORDS: dict[Language, frozenset[str]] = {
    "en": _set(
        """a about above after again against all am an and any are as at be because been
        before being below between both but by can could did do does doing down during each
        few for from further had has have having he her here hers herself him himself his how
        i if in into is it its itself just me more most my myself no nor not now of off on
        once only or other our ours ourselves out over own same she should so some such than
        that the their theirs them themselves then there these they this those through to too
        under until up very was we were what when where which while who whom why will with
        would you your yours yourself yourselves"""
    ),
    "fr": _set(
        """a au aux avec ce ces dans de des du elle en et eux il ils je la le les leur lui ma
        mais me meme mes moi mon ne nos notre nous on ou par pas pour qu que qui sa se ses son
        sur ta te tes toi ton tu un une vos votre vous c d j l m n s t y ete etee etees etes
        etant suis es est sommes etes sont serai seras sera serons serez seront serais serait
        serions seriez seraient etais etait etions etiez etaient fus fut fumes futes furent
        sois soit soyons soyez soient fusse fusses fut fussions fussiez fussent ayant eu eue
        eues eus ai as avons avez ont aurai auras aura aurons aurez auront aurais aurait
        aurions auriez auraient avais avait avions aviez avaient eut eumes eutes eurent aie
        aies ait ayons ayez aient eusse eusses eussions eussiez eussent ceci cela cet cette
        ici ils leurs quel quels quelle quelles sans soi comme est-ce dont donc lorsque
        puisque quand si tout tous toute toutes tres aussi alors ainsi"""
    ),
}
# Words that tell the language apart: frequent in one, rare in the other.
_MARKERS: dict[Language, frozenset[str]] = {
    "en": _set("the and of to is in that it for are with as was be by this on not or which"),
    "fr": _set("le la les des et est une un du dans pour que qui sur pas au aux avec ce cette sont"),
}


def fold(text: str) -> str:
    """Lower case without accents: "Été" -> "ete"."""
    if text.isascii():
        return text.lower()
    return _fold(text)


@lru_cache(maxsize=65536)
def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """Lower-cased words, French elisions removed ("l'algorithme" -> "algorithme")."""
    # Lower-cased all at once, joined by spaces: the same as word by word (no lower-case
    # form holds a space, and a space ends a final sigma as the word's end does).
    found = " ".join(_WORD.findall(text)).lower().split(" ")
    if found == [""]:  # no word
        return []
    if "'" not in text and "’" not in text:  # no elision or possessive: most texts
        return found
    kept = []
    for word in found:
        if "'" in word or "’" in word:
            word = _ELISION.sub("", word).replace("’", "'")
            if word.endswith("'s"):
                word = word[:-2]
            if not word:
                continue
        kept.append(word)
    return kept


def detect_language(text: str) -> Language:
    """French or English, by the share of each language's marker words."""
    head = text[:4000]
    return _language_of(_folded(head, words(head)))


# Question words: frequent in one language's questions, absent from the other's.
_ASKING: dict[Language, frozenset[str]] = {
    "en": _set("what which who whom whose why how where when does do did can should"),
    "fr": _set("pourquoi quel quelle quels quelles combien quand est-ce puis-je faut-il peut-on"),
}


# Words of one language only, that tell a short text's language when its markers do not
# ("Quels matériaux l'artiste utilise-t-il ?" has none).
_TIES: dict[Language, frozenset[str]] = {
    "en": _ASKING["en"] | _set("he she his her their they its we you what how there"),
    "fr": _ASKING["fr"] | _set("ou il elle ils elles son sa ses quoi comment quel lui leur nous vous"),
}


def told_language(text: str) -> Language | None:
    """The language of a short text (a question) where its words tell it: more marker and
    question words of one language than of the other; None when they do not (a question
    of names and commands only, such as "apt-get proxy ?")."""
    folded = _folded(text, words(text))
    counts = {lang: sum(w in _MARKERS[lang] or w in _ASKING[lang] for w in folded) for lang in _MARKERS}
    if counts["fr"] == counts["en"]:
        return None
    return "fr" if counts["fr"] > counts["en"] else "en"


def _language_of(folded: list[str]) -> Language:
    fr, en = _MARKERS["fr"], _MARKERS["en"]
    french, english = sum(map(fr.__contains__, folded)), sum(map(en.__contains__, folded))
    if french == english:  # a short text: its question and pronoun words tell
        french, english = (
            sum(map(_TIES["fr"].__contains__, folded)),
            sum(map(_TIES["en"].__contains__, folded)),
        )
    return "fr" if french > english else "en"


def _folded(text: str, found: list[str]) -> list[str]:
    """`fold` of each of the words found in `text` (already lower-cased: as they are when
    the text is ASCII)."""
    return found if text.isascii() else [w if w.isascii() else _fold(w) for w in found]


def content_words(text: str, language: Language) -> list[str]:
    """The text's words but its language's stop words, in order, before stemming."""
    found = words(text)
    return _content(found, _folded(text, found), language)


def _content(found: list[str], folded: list[str], language: Language) -> list[str]:
    stops = STOP_WORDS[language]
    return [w for w, f in zip(found, folded, strict=True) if f not in stops and len(w) < 64]


def analyze(text: str, language: Language | None = None) -> list[str]:
    """The text's search terms, in order (repeats kept: they count in BM25)."""
    found = words(text)  # once, for the language and the terms
    folded = _folded(text, found)
    lang = language or _told(text, folded)
    return _terms(found, folded, lang)


def language_and_terms(text: str, before: str = "") -> tuple[Language, list[str]]:
    """The language of `text`, and the search terms of `before + text` in it: what
    `detect_language(text)` and `analyze(before + text, language)` give, the words read
    once. `before` (a chunk's context header) ends with white space, or is empty."""
    found = words(text)
    folded = _folded(text, found)
    lang = _told(text, folded)
    if before:
        ahead = words(before)
        found, folded = ahead + found, _folded(before, ahead) + folded
    return lang, _terms(found, folded, lang)


def _told(text: str, folded: list[str]) -> Language:
    """`detect_language(text)`, from the text's folded words when they are all it reads."""
    return _language_of(folded) if len(text) <= 4000 else detect_language(text)


def _terms(found: list[str], folded: list[str], language: Language) -> list[str]:
    return _fold_all(_stemmer(language).stemWords(_content(found, folded, language)))


def _fold_all(items: list[str]) -> list[str]:
    """`fold` of each item (none holding a space): ASCII ones lower-cased at once."""
    joined = " ".join(items)
    if not joined.isascii():
        return [fold(w) for w in items]
    return joined.lower().split(" ") if items else []


def _stemmer(lang: Language) -> _ThreadStemmers:
    return _stemmers(lang)


class _ThreadStemmers:
    """A PyStemmer stemmer per thread (one stemmer object is not safe to share)."""

    def __init__(self, lang: Language) -> None:
        self.algorithm = _STEMMERS[lang]
        self._local = threading.local()

    def stemWords(self, batch: list[str]) -> list[str]:  # noqa: N802  (PyStemmer's name)
        stemmer = getattr(self._local, "stemmer", None)
        if stemmer is None:
            import Stemmer

            stemmer = self._local.stemmer = Stemmer.Stemmer(self.algorithm)
        return list(stemmer.stemWords(batch))


@lru_cache(maxsize=len(LANGUAGES))
def _stemmers(lang: Language) -> _ThreadStemmers:
    return _ThreadStemmers(lang)


# Claims a weak model gets wrong: numbers, commands, options and paths, found as they are.
_CLAIM_TOKEN = re.compile(r"(?:--?|/|~/)?\w(?:[\w./:@+'’-]*\w)?", re.UNICODE)
_CLAIM_CITATION = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
_CLAIM_ELISION = re.compile(r"^(?:[cdjlmnst]|qu)['’]")
_CLAIM_PARTS = re.compile(r"[-_/.@:]")


def claim_tokens(text: str) -> list[str]:
    """Words, numbers and command-like tokens (`--search`, `/etc/apt`, `dpkg-divert`), in
    lower case without accents or elisions; citations like [1] left out."""
    plain = _CLAIM_CITATION.sub(" ", text.replace("`", " "))
    return [_CLAIM_ELISION.sub("", fold(t)) for t in _CLAIM_TOKEN.findall(plain)]


def is_exact(token: str) -> bool:
    """A token that must be found as it is: a number, or a command, option or path."""
    return any(c.isdigit() for c in token) or any(c in token for c in "-_/.@:")


def held_tokens(text: str) -> set[str]:
    """The claim tokens of `text` and their parts ("dpkg-divert" also holds "dpkg")."""
    held = set(claim_tokens(text))
    return held | {part for t in held for part in _CLAIM_PARTS.split(t) if part}
