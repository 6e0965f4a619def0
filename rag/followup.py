"""Follow-up questions made standalone for search, in English and French.

In a conversation, "And how long do they sleep?" says nothing by itself: the search must
know it is about cats. Gluing the whole previous question on ("What do cats eat? And how
long do they sleep?") brings its intent along too, and the search finds what cats eat
again. Instead, a question that refers back (a pronoun, "and ...", no content word of its
own) takes only the *topic* of the conversation with it: the title of the document the
previous question found, when the caller can search (`topic`), else the previous
question's content words. Done by rules by default (no model call); with
`retrieval.followups = "model"` the model rewrites the question, and the rules stand in
when what it writes is unusable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from rag.analysis import STOP_WORDS, detect_language, fold, words


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


Message = dict[str, str]

_REFERS_BACK = {
    "en": _set(
        "it its they them their theirs this that these those he she him his her hers "
        "above previous former latter same"
    ),
    "fr": _set(
        "il elle ils elles lui leur leurs celui celle ceux celles cela ca cet cette "
        "ces sa son ses y dernier derniere precedent precedente meme memes"
    ),
}
# Words that carry a question's form, not its topic.
_FORM_WORDS = _set(
    """what which who whom whose when where why how much many long often can could should
    would will shall may might must do does did done doing make makes made get gets got have
    has had having tell explain describe give list show mean means happen happens use used
    and also else about instead then so please there here kind sort type way thing things
    quel quelle quels quelles qui quoi que quand ou comment pourquoi combien est-ce faut
    peut peuvent doit doivent faire fait font dire dit donner explique expliquer decris
    aussi alors donc sinon puis encore autre autres chose choses facon maniere genre type
    sorte et ou mais"""
)
TOPIC_TURNS = 3  # earlier user turns looked at for the conversation's topic
_CONTINUES = re.compile(
    r"^\s*(and|but|also|what about|how about|et|mais|aussi|et pour|et si)\b", re.IGNORECASE
)


def standalone_query(
    question: str, history: Sequence[Message], topic: Callable[[str], str | None] | None = None
) -> str:
    """The question to search with: itself, or with the conversation's topic when it
    leans on earlier turns. `topic(query)` names what a query is about (for example the
    title of the document it retrieves)."""
    previous = [m["content"] for m in history if m.get("role") == "user" and m.get("content")]
    if not previous or not is_followup(question):
        return question
    resolved = ""
    # Earlier follow-ups lean on the ones before them; the last few turns carry the topic
    # (each one resolved may cost a search, so a long conversation is not walked whole).
    for earlier in previous[-TOPIC_TURNS:]:
        resolved = _resolve(earlier, resolved, topic)
    return _resolve(question, resolved, topic)


def is_followup(question: str) -> bool:
    """Short, starting like a continuation, or referring back with a pronoun."""
    lang = detect_language(question)
    found = [fold(w) for w in words(question)]
    content = [w for w in found if w not in STOP_WORDS[lang] and w not in _FORM_WORDS]
    return not content or bool(_CONTINUES.match(question)) or any(w in _REFERS_BACK[lang] for w in found)


def topic_words(text: str) -> list[str]:
    """The content words of a question: its topic, not its form."""
    lang = detect_language(text)
    seen: list[str] = []
    for word in words(text):
        folded = fold(word)
        if (
            folded in STOP_WORDS[lang]
            or folded in _FORM_WORDS
            or folded in _REFERS_BACK[lang]
            or len(folded) < 2
            or folded in {fold(s) for s in seen}
        ):
            continue
        seen.append(word)
    return seen


def _resolve(question: str, before: str, topic: Callable[[str], str | None] | None) -> str:
    """`question`, made standalone with the topic of the query `before` it."""
    if not before or not is_followup(question):
        return question
    about = topic(before) if topic is not None else None
    candidates = words(about) if about else topic_words(before)
    present = {fold(w) for w in words(question)}
    extra = [w for w in candidates if fold(w) not in present]
    return f"{question.rstrip()} ({' '.join(extra)})" if extra else question


REWRITE_PROMPT = {
    "en": "Rewrite the user's last question so that it can be understood without the "
    "conversation. Reply with the rewritten question only.",
    "fr": "Réécris la dernière question de l'utilisateur pour qu'elle se comprenne sans la "
    "conversation. Réponds seulement par la question réécrite.",
}


def rewrite_messages(question: str, history: Sequence[Message]) -> list[Message]:
    """The chat messages that ask a model to rewrite a follow-up question."""
    lang = detect_language(question)
    turns = [
        f"{m['role']}: {m['content'][:500]}"
        for m in history[-6:]
        if m.get("role") in ("user", "assistant") and m.get("content")
    ]
    conversation = "\n".join(turns)
    return [
        {"role": "system", "content": REWRITE_PROMPT[lang]},
        {"role": "user", "content": f"{conversation}\nuser: {question}\n\n{REWRITE_PROMPT[lang]}"},
    ]


def usable_rewrite(text: str, question: str) -> str | None:
    """The model's rewrite, if it looks like one question (else None)."""
    line = text.strip().split("\n", 1)[0].strip().strip('"«» ')
    line = re.sub(r"^(user|utilisateur|question)\s*:\s*", "", line, flags=re.IGNORECASE)
    if not line or len(line) > 4 * len(question) + 200 or len(words(line)) < 2:
        return None
    return line
