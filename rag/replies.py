"""What the service says by itself, in the question's language (English and French)."""

from __future__ import annotations

from rag.analysis import Language

SYSTEM_PROMPT: dict[Language, str] = {
    "en": "You are a helpful assistant that answers questions about the user's documents. "
    "Answer only from the numbered sources given with the question, and cite the sources you "
    "use like [1] or [2]. If the sources do not contain the answer, say that the documents do "
    "not say. Answer in English.",
    "fr": "Tu es un assistant qui répond aux questions sur les documents de l'utilisateur. "
    "Réponds uniquement à partir des sources numérotées données avec la question, et cite les "
    "sources utilisées comme [1] ou [2]. Si les sources ne contiennent pas la réponse, dis que "
    "les documents ne le disent pas. Réponds en français.",
}
NO_CONTEXT_SYSTEM_PROMPT: dict[Language, str] = {
    "en": "You are a helpful assistant. Answer briefly, in English.",
    "fr": "Tu es un assistant serviable. Réponds brièvement, en français.",
}
NOTHING_FOUND: dict[Language, str] = {
    "en": "I found nothing about this in the documents.",
    "fr": "Je n'ai rien trouvé à ce sujet dans les documents.",
}
NOT_IN_DOCUMENTS: dict[Language, str] = {
    "en": "The documents do not say. The closest passages are listed as sources.",
    "fr": "Les documents ne le disent pas. Les passages les plus proches sont donnés en sources.",
}
# An answer quoted from passages in another language than the question's starts with this.
QUOTED_IN: dict[Language, dict[Language, str]] = {
    "en": {"fr": "The documents say, in French:"},
    "fr": {"en": "Les documents disent, en anglais :"},
}
