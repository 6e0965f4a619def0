"""`rag models list` and `rag models info [NAME]`: the GGUF models at hand, what they cost, and
what the runtimes run them with on this processor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from rag.util import console_text
from rag_cli.app import ConfigOpt, SetOpt, app, fail, out, settings_from

if TYPE_CHECKING:
    from rag.generators.gguf import ModelInfo
    from rag.generators.gguf_catalog import ModelCatalog

models_app = typer.Typer(help="List and describe the GGUF models requests can pick.", no_args_is_help=True)
app.add_typer(models_app, name="models")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _catalog(config: Path | None, set_: list[str] | None) -> ModelCatalog:
    from rag.generators.gguf_catalog import ModelCatalog

    return ModelCatalog(settings_from(config, set_).llm)


@models_app.command("list")
def models_list(as_json: JsonOpt = False, config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Every GGUF of llm.models_dir and the packaged model: what it is and the RAM it needs
    at the context it would run with."""
    from rag.generators.gguf import GGUFError

    catalog = _catalog(config, set_)
    found = catalog.list()
    default = _default(catalog)
    rows = [_row(catalog, item, default) for item in found if not isinstance(item, GGUFError)]
    errors = [str(item) for item in found if isinstance(item, GGUFError)]
    if as_json:
        typer.echo(json.dumps({"models": rows, "errors": errors}, indent=2))
        return
    table = Table(
        "name",
        "arch",
        "params",
        "quant",
        "size",
        "trained ctx",
        "chat",
        "licence",
        "n_ctx",
        "RAM",
        title=f"models ({catalog.settings.models_dir} and packaged)",
    )
    for row in rows:
        name = console_text(row["name"]) + (" (default)" if row["default"] else "")
        table.add_row(
            name,
            row["architecture"],
            _count(row["parameters"]),
            row["quantization"],
            _mib(row["file_size"]),
            str(row["context_length"] or "-"),
            "yes" if row["chat_template"] else "no",
            row["licence"] or "-",
            str(row["n_ctx"]),
            _mib(row["ram_bytes"]),
        )
    out.print(table)
    for line in errors:
        out.print(f"[yellow]skipped:[/yellow] {console_text(line)}", highlight=False)


@models_app.command("info")
def models_info(
    name: Annotated[
        str | None,
        typer.Argument(
            help="A model name from `rag models list`, or a .gguf file (default: the default model)."
        ),
    ] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Everything a model's GGUF header says and its RAM estimate; then the processor, its
    SIMD features and the instruction sets llama.cpp and onnxruntime use on it."""
    from rag.generators.gguf import read_gguf
    from rag.hardware import describe

    catalog = _catalog(config, set_)
    default = _default(catalog)
    name = name or default
    path = Path(name)
    info = read_gguf(path) if name.endswith(".gguf") and path.is_file() else catalog.info(name)
    row = _row(catalog, info, default)
    meta = {k: _shown(v) for k, v in info.metadata.items()}
    details = {
        **row,
        "path": str(info.path),
        "n_layer": info.n_layer,
        "n_head": info.n_head,
        "n_head_kv": info.n_head_kv,
        "head_dim": info.head_dim,
        "n_embd": info.n_embd,
        "weights_bytes": info.weights_bytes,
        "kv_cache_bytes": info.kv_cache_bytes(row["n_ctx"]),
    }
    cpu = describe()
    if as_json:
        typer.echo(json.dumps({**details, "metadata": meta, "cpu": cpu}, indent=2, ensure_ascii=False))
        return
    table = Table("field", "value", title=info.name)
    for key, value in details.items():
        shown = _mib(value) if key.endswith(("_bytes", "_size")) else str(value)
        table.add_row(key, shown)
    out.print(table)
    about = Table("metadata", "value", title="GGUF metadata")
    for key, value in meta.items():
        about.add_row(key, value if len(value) < 300 else value[:300] + "…")
    out.print(about)
    out.print(_cpu_table(cpu))


def _cpu_table(cpu: dict[str, Any]) -> Table:
    """The processor, and what each runtime runs on it (rag.hardware.describe)."""
    ort = cpu["onnxruntime"]
    llama = cpu["llama_cpp"]
    rows = {
        "processor": cpu["summary"],
        "SIMD features": ", ".join(cpu["simd"]) or "unknown",
        "llama.cpp runs with": "not installed" if llama is None else " ".join(llama),
        "onnxruntime": "not installed"
        if ort is None
        else f"{ort['version']}, " + ", ".join(ort["providers"]),
    }
    if ort is not None:
        kernels = ", ".join(f"{kind} {family}" for kind, family in ort["mlas_kernels"].items())
        rows["onnxruntime MLAS kernels"] = f"{kernels or 'unknown'} (derived from the processor's flags)"
    table = Table("field", "value", title="processor and runtimes")
    for key, value in rows.items():
        table.add_row(key, value)
    return table


def _default(catalog: ModelCatalog) -> str:
    from rag.errors import ConfigError

    try:
        return catalog.default_name()
    except ConfigError as exc:
        raise fail(str(exc)) from None


def _row(catalog: ModelCatalog, info: ModelInfo, default: str | None) -> dict[str, Any]:
    return {**info.summary(catalog.n_ctx(info)), "default": info.name == default}


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def _mib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


@models_app.command("quantize")
def models_quantize(
    name: Annotated[str, typer.Argument(help="The model to start from (`rag models list`).")],
    quantization: Annotated[str, typer.Argument(help="Target type: Q8_0, Q4_0, Q4_K_M, Q5_K_M...")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Write a copy of a model quantized to another type into llm.models_dir, to compare
    them with `rag eval --models`."""
    from rag.generators.gguf import quantize, quantized_name

    catalog = _catalog(config, set_)
    source = catalog.info(name)
    target = catalog.settings.models_dir / f"{quantized_name(source.name, quantization)}.gguf"
    made = quantize(source.path, target, quantization)
    out.print(f"wrote {target} ({made.quantization}, {_mib(made.file_size)})", highlight=False)
