"""`Settings`: every setting of the service, one group per concept, as one object."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rag.config.answer import AnswerSettings
from rag.config.groups import (
    INDEX_NAME_PATTERN,
    ChunkingSettings,
    EmbedderSettings,
    IngestSettings,
    LlmSettings,
    RerankSettings,
    RetrievalSettings,
    StoreSettings,
    rerank_with_aliases,
)
from rag.config.server import ServerSettings

ENV_PREFIX = "RAG_"
#: What an index may be called, everywhere (a safe folder name for every store).


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
