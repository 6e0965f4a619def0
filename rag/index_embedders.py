"""The embedder that searches each index, and the attributor that follows it.

An index is searched by the embedder it was built with: the configured one, or, when
`embedder.kind` (or `embedder.model`) was not set and the index was built by the
model's other local runtime (or the other packaged model), that one, loaded on first
use, so an index keeps working when a default changes. Answers from it are attributed
by that model's meaning, with the thresholds calibrated for it.
"""

from __future__ import annotations

import logging
import threading

from rag.config import AnswerSettings, Settings, answer_settings_for
from rag.embedders import make_embedder, settings_for_index
from rag.embedders.base import Embedder
from rag.errors import IndexMismatchError
from rag.grounding.attribution import Attributor
from rag.store import StoreReader

logger = logging.getLogger(__name__)


class IndexEmbedders:
    """The configured embedder and those other indexes were built with, each with its
    attributor; loaded once, shared by request threads."""

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self.attributor = self._attributor(embedder)
        self._embedders: dict[str, Embedder] = {}  # other runtimes or models, for indexes built by them
        self._attributors: dict[str, Attributor] = {}
        self._lock = threading.Lock()

    def embedder_for(self, store: StoreReader) -> Embedder:
        """The embedder that searches `store` (see the module's docstring)."""
        manifest = store.manifest
        configured = self.settings.embedder
        wanted = settings_for_index(configured, manifest.embedder_kind, manifest.embedder)
        if (wanted.kind, wanted.model) == (self.embedder.kind, configured.model):
            return self.embedder
        key = f"{wanted.kind}:{wanted.model}"
        with self._lock:
            if key not in self._embedders:
                logger.info(
                    "index %s built with embedder kind=%s model=%s: loading it",
                    store.name,
                    wanted.kind,
                    wanted.model,
                )
                self._embedders[key] = make_embedder(wanted, threads=1)
            return self._embedders[key]

    def grounding_for(self, embedder: Embedder | None) -> tuple[Attributor, AnswerSettings]:
        """The attributor and the answer settings for answers from an index that `embedder`
        searches: attribution compares by that model's meaning, and abstention uses the
        thresholds calibrated for it where none were set (`answer_settings_for`)."""
        if embedder is None or embedder is self.embedder:
            attributor = self.attributor
        else:
            key = f"{embedder.kind}:{embedder.name}"
            with self._lock:
                if key not in self._attributors:
                    self._attributors[key] = self._attributor(embedder)
                attributor = self._attributors[key]
        name = getattr(attributor.embedder, "name", "")
        return attributor, answer_settings_for(self.settings.answer, str(name))

    def check(self, store: StoreReader) -> None:
        """Refuse an index its embedder cannot search (IndexMismatchError)."""
        embedder = self.embedder_for(store)
        try:
            store.manifest.check_embedder(embedder.kind, embedder.name, embedder.dimension)
        except IndexMismatchError as exc:
            raise IndexMismatchError(f"index {store.name!r}: {exc}") from None

    def _attributor(self, embedder: Embedder) -> Attributor:
        a = self.settings.answer
        return Attributor(
            embedder,
            lexical=a.support_lexical,
            dense=a.support_dense,
            combined=a.support_combined,
            relevance=a.min_relevance,
        )
