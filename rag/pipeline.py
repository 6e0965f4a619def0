"""The pipeline: from a question to a grounded, cited answer.

    pipeline = Pipeline.from_settings(settings)
    answer = pipeline.ask("How do I ingest a folder?")
    for event in pipeline.stream("..."): ...

Used alike by the CLI and the API.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

from rag.access import check_visible, visible
from rag.analysis import detect_language
from rag.answers import DoneEvent, Event, Prepared, TokenEvent, cited, grounded, nothing_found
from rag.config import AnswerSettings, Settings
from rag.conversation import Turns, conversation_of
from rag.embedders import make_embedder
from rag.embedders.base import Embedder
from rag.errors import ConfigError, IndexMismatchError, IndexNotFoundError, InvalidRequestError
from rag.followup import is_followup, rewrite_messages, standalone_query, usable_rewrite
from rag.generators import make_generator
from rag.generators.base import GenerationParams, Generator, Message
from rag.generators.gguf_catalog import ModelCatalog
from rag.generators.pool import Lease, ModelPool
from rag.grounding.attribution import Attributor
from rag.grounding.citations import CitationFilter
from rag.hardware import runtime_fields
from rag.index_embedders import IndexEmbedders
from rag.prompt import PromptBuilder, source_of
from rag.replies import NO_CONTEXT_SYSTEM_PROMPT, NOTHING_FOUND, SYSTEM_PROMPT
from rag.rerankers import Reranker, make_reranker
from rag.retrievers import Retriever, make_retriever
from rag.store import Filters, StoreReader, StoreReaders, check_index_name, make_catalog
from rag.types import Answer, Hit, Usage

logger = logging.getLogger(__name__)

__all__ = ["DoneEvent", "Event", "Pipeline", "Prepared", "TokenEvent"]

SEE_ALSO = 3  # closest passages returned when nothing passes the score floor


class Pipeline:
    """Retrieval, reranking, prompt and generation over the named indexes of one settings
    object."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        generator: Generator,
        retriever: Retriever | None = None,
        reranker: Reranker | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.index_embedders = IndexEmbedders(settings, embedder)
        self.attributor = self.index_embedders.attributor
        self.models = ModelCatalog(settings.llm)
        self.default_model = generator.name
        self.pool = ModelPool(self._load_model, settings.llm.max_loaded, settings.llm.model_wait)
        self.pool.add(generator.name, generator)
        self._prompts: dict[str, tuple[Generator, PromptBuilder]] = {}
        self._turns = Turns()
        self.catalog = make_catalog(settings)
        self.readers = StoreReaders(self.catalog, check=self.index_embedders.check)
        self.retriever = retriever or make_retriever(settings.retrieval, embedder)
        self.reranker = reranker or make_reranker(settings.rerank)
        self._retrievers: dict[tuple[str, str, str], Retriever] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Pipeline:
        """Load the embedder and the model once."""
        # Torch and llama.cpp share one OpenMP runtime in this process. Once torch runs a
        # team of threads from another thread, llama.cpp's threads stop spinning between
        # steps and decoding gets about three times slower. Questions are short: a single
        # torch thread embeds them in milliseconds and starts no team.
        embedder = make_embedder(settings.embedder, threads=1)
        llm = settings.llm
        if llm.kind == "llama-cpp":  # the default model, by name, its context decided
            catalog = ModelCatalog(llm)
            llm = catalog.settings_for(catalog.default_name())
        pipeline = cls(settings, embedder, make_generator(llm))
        # Which instruction sets the runtimes just loaded use (figures differ with them).
        logger.info("cpu %s", runtime_fields())
        return pipeline

    # -- models ----------------------------------------------------------------------

    @property
    def generator(self) -> Generator:
        """The default model (loaded again if another one took its place), held by no one:
        for the pipeline's only user (the CLI). Requests hold theirs (`lease_model`)."""
        return self.pool.get(self.default_model)

    @property
    def prompts(self) -> PromptBuilder:
        return self.prompts_for(self.generator)

    def lease_model(self, model: str | None) -> Lease:
        """The named model, loaded on first use, held until the lease is released; the
        default one for None. A name the catalog does not know is an InvalidRequestError
        naming the known ones; ModelsBusyError when every loaded model is held too long."""
        if model is None or model == self.default_model:
            return self.pool.lease(self.default_model)
        try:
            name = self.models.resolve(model)
        except ConfigError as exc:
            raise InvalidRequestError(str(exc)) from None
        return self.pool.lease(self.default_model if name == self.default_model else name)

    def prompts_for(self, generator: Generator) -> PromptBuilder:
        held = self._prompts.get(generator.name)
        if held is None or held[0] is not generator:  # a model loaded again is measured again
            held = (generator, PromptBuilder(generator, trim_chars=self.settings.answer.passage_chars))
            self._prompts[generator.name] = held
        return held[1]

    def _load_model(self, name: str) -> Generator:
        return make_generator(self.models.settings_for(name))

    # -- indexes ---------------------------------------------------------------------

    def index(self, name: str | None = None) -> StoreReader:
        """The named index as last committed; a deleted or re-created index is never
        served as the one it replaced. An index outside the request's scope is missing
        (`rag.access`): every route opens its indexes here."""
        return self.readers.get(check_visible(check_index_name(name or self.settings.index)))

    def index_names(self) -> list[str]:
        """The existing indexes the request's scope lets it see, sorted."""
        return visible(self.catalog.names())

    def loaded_index_sizes(self) -> dict[str, int]:
        """Chunks of each index open now; opens none (one deleted since is left out)."""
        sizes = {}
        for name, store in self.readers.loaded().items():
            try:
                sizes[name] = store.chunk_count()
            except IndexNotFoundError:
                continue
        return sizes

    def embedder_for(self, store: StoreReader) -> Embedder:
        """The embedder that searches `store`: the configured one, or the one the index was
        built with when no embedder was chosen (see `rag.index_embedders`)."""
        return self.index_embedders.embedder_for(store)

    def embedder_for_index(self, name: str) -> Embedder:
        """The embedder to ingest into index `name` with: the runtime it was built with
        (see `embedder_for`), or the configured one for a new index."""
        try:
            return self.embedder_for(self.index(name))
        except (IndexNotFoundError, IndexMismatchError):
            return self.embedder  # a new index; or one refused, as the ingest will report

    def grounding_for(self, embedder: Embedder | None) -> tuple[Attributor, AnswerSettings]:
        """The attributor and the answer settings for answers from an index that `embedder`
        searches (see `IndexEmbedders.grounding_for`)."""
        return self.index_embedders.grounding_for(embedder)

    # -- searching -------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        index: str | None = None,
        top_k: int | None = None,
        mode: str | None = None,
        min_score: float | None = None,
        filters: Filters | None = None,
    ) -> list[Hit]:
        """The ranked chunks a question retrieves, as answering would, without the model.
        `mode` picks another retriever than the configured one for this search."""
        store = self.index(index)
        k = top_k or self.settings.retrieval.top_k
        return self._retrieve(
            self.retriever_for(mode, store), store, query, k, min_score=min_score, filters=filters
        )

    def _retrieve(
        self, retriever: Retriever, store: StoreReader, query: str, k: int, **options: Any
    ) -> list[Hit]:
        """The retriever's hits, as many as the reranker reorders, then its best `k`;
        `options` are `Retriever.retrieve`'s."""
        hits = retriever.retrieve(store, query, self.reranker.depth(k), **options)
        return self.reranker.rerank(query, hits, k)

    def retriever_for(self, mode: str | None, store: StoreReader | None = None) -> Retriever:
        """The configured retriever, or one of another mode, or over the embedder `store`
        was built with (see `embedder_for`)."""
        embedder = self.embedder if store is None else self.embedder_for(store)
        mode = mode or self.retriever.mode
        if mode == self.retriever.mode and embedder is self.embedder:
            return self.retriever
        key = (mode, embedder.kind, embedder.name)
        if key not in self._retrievers:
            settings = self.settings.retrieval.model_copy(update={"mode": mode})
            self._retrievers[key] = make_retriever(settings, embedder)
        return self._retrievers[key]

    def search_query(
        self,
        question: str,
        history: Sequence[Message],
        store: StoreReader | None = None,
        generator: Generator | None = None,
    ) -> str:
        """What to search for: the question, made standalone when it follows up on the
        conversation (by rules, or by the model when `retrieval.followups = "model"`: the
        model that answers, `generator`, else the default one). With the index at hand, a
        conversation's topic is the title of the document its previous question finds."""

        def topic(query: str) -> str | None:
            if store is None:
                return None
            hits = self._retrieve(self.retriever_for(None, store), store, query, 1)
            return hits[0].chunk.title if hits else None

        by_rules = standalone_query(question, history, topic)
        if self.settings.retrieval.followups != "model" or not history or not is_followup(question):
            return by_rules
        params = GenerationParams(max_tokens=64, temperature=0.0, top_k=1, seed=0)
        model = generator or self.generator
        text = "".join(d.text for d in model.stream(rewrite_messages(question, history), params))
        rewritten = usable_rewrite(text, question)
        logger.info("follow-up rewritten by the model ok=%s", rewritten is not None)
        return rewritten or by_rules

    # -- answering -------------------------------------------------------------------

    def prepare(
        self,
        question: str,
        *,
        history: Sequence[Message] = (),
        index: str | None = None,
        top_k: int | None = None,
        min_score: float | None = None,
        params: GenerationParams | None = None,
        filters: Filters | None = None,
        model: str | None = None,
    ) -> Prepared:
        """Retrieve and build the prompt (raises ContextLengthError if it cannot fit);
        `model` names the model that will answer (default: `llm.model`). The model is held
        from here until `generate` ends, or `Prepared.release` for a prompt not generated."""
        params = params or GenerationParams.from_settings(self.settings.llm)
        lease = self.lease_model(model)
        try:
            prepared = self._prepare(
                question, history, index, top_k, min_score, params, filters, lease.generator
            )
        except BaseException:
            lease.release()
            raise
        prepared.lease = lease
        return prepared

    def _prepare(
        self,
        question: str,
        history: Sequence[Message],
        index: str | None,
        top_k: int | None,
        min_score: float | None,
        params: GenerationParams,
        filters: Filters | None,
        generator: Generator,
    ) -> Prepared:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        store = self.index(index)
        query = self.search_query(question, history, store, generator)
        k = top_k or self.settings.retrieval.top_k
        retriever = self.retriever_for(None, store)
        hits = self._retrieve(retriever, store, query, k, min_score=min_score, filters=filters)
        conversation = conversation_of(store, generator)
        history = self._turns.as_prompted(history, conversation)
        found = bool(hits)
        see_also = (
            []
            if found
            else [
                source_of(n, h)
                for n, h in enumerate(
                    self._retrieve(retriever, store, query, SEE_ALSO, floor=False, filters=filters), start=1
                )
            ]
        )
        timings["retrieve"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        language = detect_language(question)
        system = (SYSTEM_PROMPT if found else NO_CONTEXT_SYSTEM_PROMPT)[language]
        prompt = self.prompts_for(generator).build(
            question, hits, history, max_tokens=params.max_tokens, system_prompt=system
        )
        timings["prompt"] = time.perf_counter() - t1
        return Prepared(
            prompt,
            params,
            found,
            timings,
            language,
            see_also,
            question,
            generator,
            conversation=conversation,
            embedder=self.embedder_for(store),
        )

    def stream(self, question: str, **kwargs: Any) -> Iterator[Event]:
        """Tokens as they are generated, then the whole answer with its sources."""
        prepared = self.prepare(question, **kwargs)
        yield from self.generate(prepared)

    def ask(self, question: str, **kwargs: Any) -> Answer:
        """The whole answer at once."""
        answer: Answer | None = None
        for event in self.stream(question, **kwargs):  # to its end: the model is let go there
            if isinstance(event, DoneEvent):
                answer = event.answer
        if answer is None:
            raise AssertionError("stream ended without an answer")
        return answer

    def generate(self, prepared: Prepared) -> Iterator[Event]:
        """Run the model on a prepared prompt (or refuse when nothing was found); the
        model is let go when this ends, however."""
        try:
            for event in self._generate(prepared):
                if isinstance(event, DoneEvent) and prepared.generated:
                    prompted = prepared.prompt.messages[-1]["content"]
                    generated = "".join(prepared.generated)
                    self._turns.remember(
                        prepared.conversation, prepared.question, event.answer.text, prompted, generated
                    )
                yield event
        finally:
            prepared.release()

    #: Whose turns a remembered turn may stand for (see `conversation_of`).
    conversation = staticmethod(conversation_of)

    def _generate(self, prepared: Prepared) -> Iterator[Event]:
        prompt = prepared.prompt
        timings = dict(prepared.timings)
        lang = prepared.language
        if not prepared.found_context and self.settings.retrieval.refuse_without_context:
            yield TokenEvent(NOTHING_FOUND[lang])
            yield DoneEvent(nothing_found(prepared.see_also, Usage(prompt.n_tokens, 0), timings, lang))
            return
        filt = CitationFilter(s.number for s in prompt.sources)
        parts: list[str] = []
        finish, produced = "length", 0
        t0 = time.perf_counter()
        first: float | None = None
        generator = prepared.generator or self.generator
        for delta in generator.stream(prompt.messages, prepared.params):
            if first is None:
                first = time.perf_counter() - t0
            produced = delta.completion_tokens
            prepared.generated.append(delta.text)
            text = filt.feed(delta.text)
            if text:
                parts.append(text)
                yield TokenEvent(text)
            if delta.finish_reason:
                finish = delta.finish_reason
        tail = filt.flush()
        if tail:
            parts.append(tail)
            yield TokenEvent(tail)
        timings["generate"] = time.perf_counter() - t0
        timings["first_token"] = first if first is not None else timings["generate"]
        text = "".join(parts).strip()
        usage = Usage(prompt.n_tokens, produced)
        draft = Answer(text, prompt.sources, usage, timings, finish, prepared.found_context, language=lang)
        if not self.settings.answer.attribute or not prompt.sources:
            yield DoneEvent(cited(draft, filt.cited))
            return
        attributor, answer_settings = self.grounding_for(prepared.embedder)
        yield DoneEvent(grounded(draft, prepared.question, attributor, answer_settings, lang))
