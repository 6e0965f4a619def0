from __future__ import annotations

from pathlib import Path

import pytest

from rag.config import load_settings, parse_assignment, setting_sources
from rag.errors import ConfigError


def test_defaults() -> None:
    s = load_settings()
    assert s.indexes_dir == Path("indexes")
    assert s.retrieval.top_k == 4
    assert s.embedder.model == "all-MiniLM-L6-v2"


def test_env_nested_and_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "rag.toml"
    toml.write_text(
        'indexes_dir = "from-file"\n[llm]\nn_ctx = 1024\nmax_tokens = 64\n[retrieval]\ntop_k = 7\n'
    )
    monkeypatch.setenv("RAG_LLM__N_CTX", "2048")
    monkeypatch.setenv("RAG_CHUNKING__SIZE", "120")
    s = load_settings(toml, {"retrieval.top_k": 9})
    assert s.indexes_dir == Path("from-file")  # file over default
    assert s.llm.n_ctx == 2048  # env over file
    assert s.llm.max_tokens == 64
    assert s.retrieval.top_k == 9  # cli over file
    assert s.chunking.size == 120
    sources = setting_sources(toml, {"retrieval.top_k": 9})
    assert sources["llm.n_ctx"] == "env"
    assert sources["llm.max_tokens"] == "file"
    assert sources["retrieval.top_k"] == "cli"


def test_config_env_var_names_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("[server]\napi_keys = ['k1']\n")
    monkeypatch.setenv("RAG_CONFIG", str(toml))
    assert [k.get_secret_value() for k in load_settings().server.api_keys] == ["k1"]


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"chunking.size": -5}, "chunking.size"),
        ({"llm.model_path": "/nope/model.gguf"}, "model file not found"),
        ({"retrieval.nonsense": 1}, "unknown setting"),
    ],
)
def test_bad_values_are_one_line(overrides: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(overrides=overrides)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_RETRIEVAL__TOPK", "3")
    with pytest.raises(ConfigError, match="RAG_RETRIEVAL__TOPK"):
        load_settings()


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings("/nope/rag.toml")


def test_parse_assignment() -> None:
    assert parse_assignment("retrieval.top_k=8") == ("retrieval.top_k", 8)
    assert parse_assignment("llm.stop=['x']") == ("llm.stop", ["x"])
    assert parse_assignment("index=docs") == ("index", "docs")
    with pytest.raises(ConfigError):
        parse_assignment("no-equals")


def test_overlap_must_be_below_size() -> None:
    with pytest.raises(ConfigError, match="overlap"):
        load_settings(overrides={"chunking.size": 50, "chunking.overlap": 50})


def test_list_setting_not_json_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_SERVER__API_KEYS", "key1")
    with pytest.raises(ConfigError):
        load_settings()
