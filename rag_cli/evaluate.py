"""`rag eval`: measure retrieval and answer quality on a question set; compare runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from rag_cli.app import ConfigOpt, SetOpt, app, err, fail, out, settings_from

CorpusOpt = Annotated[
    Path | None, typer.Option(help="The documents folder of a JSONL question set.", show_default=False)
]
WorkdirOpt = Annotated[Path, typer.Option(help="Where evaluation corpora and saved runs are kept.")]


@app.command("eval")
def eval_command(
    dataset: Annotated[
        Path | None,
        typer.Argument(
            help="A BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv) or a JSONL file of "
            "questions (with --corpus).",
            show_default=False,
        ),
    ] = None,
    split: str = typer.Option("test", help="The qrels split of a BEIR dataset."),
    limit: int | None = typer.Option(None, min=1, help="Only the first N queries: a quick subset."),
    corpus: CorpusOpt = None,
    generate: bool | None = typer.Option(
        None,
        "--generate/--no-generate",
        help="Also answer every question with the model and score the answers "
        "(default: when the dataset has reference answers).",
        show_default=False,
    ),
    drafts: str = typer.Option(
        "model",
        "--drafts",
        metavar="model|references",
        help="Who writes the drafts grounding checks: the model, or the reference answers "
        "(each question's own, and another's; no model runs), to score right drafts kept "
        "and wrong drafts caught.",
    ),
    workdir: WorkdirOpt = Path("evals"),
    compare: tuple[str, str] | None = typer.Option(
        None,
        "--compare",
        metavar="RUN_A RUN_B",
        help="Print two saved runs (files or run ids) side by side instead of running.",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    models: str | None = typer.Option(
        None,
        "--models",
        metavar="A,B,...",
        help="Answer with each of these models in turn (names from `rag models list`) and "
        "print them side by side, with speed and memory; writes a chart too.",
        show_default=False,
    ),
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Ingest a dataset's corpus, run its queries and report nDCG@10, Recall@k, MRR@10
    (and answer metrics when it has reference answers). Each run is saved as JSON.

    Examples: `rag eval ./scifact --split train --limit 100`,
    `rag eval ./scifact --set chunking.size=128`, `rag eval questions.jsonl --corpus ./docs`,
    `rag eval --compare RUN_A RUN_B`, `rag eval questions.jsonl --corpus ./docs --models A,B`.
    """
    from rag_eval.compare import load_run
    from rag_eval.datasets import load_dataset
    from rag_eval.runner import RunOptions, run

    settings = settings_from(config, set_)
    if compare and compare[0] is not None:
        _print_comparison(load_run(compare[0], workdir), load_run(compare[1], workdir), as_json)
        return
    if dataset is None:
        raise fail("give a DATASET to evaluate, or --compare RUN_A RUN_B")
    if drafts not in ("model", "references"):
        raise fail(f"--drafts is model or references, not {drafts!r}")
    data = load_dataset(dataset, split, corpus)
    options = RunOptions(limit=limit, generate=generate, progress=not as_json, drafts=drafts)
    if models is not None:
        from rag_eval.model_comparison import compare_models

        names = [m.strip() for m in models.split(",") if m.strip()]
        _print_models(compare_models(settings, data, workdir, options, names), as_json)
        return
    if as_json or not err.is_terminal:
        record = run(settings, data, workdir, options)
    else:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        # Shown from the first query on: the ingest, in a child process, has its own bar.
        progress = Progress(*columns, console=err, transient=True)
        task = progress.add_task("queries", total=None)

        def on_query(done: int, total: int) -> None:
            progress.start()  # no-op once started
            progress.update(task, completed=done, total=total)

        try:
            record = run(settings, data, workdir, options, on_query)
        finally:
            progress.stop()
    _print_run(record, as_json)


def _print_run(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(
            json.dumps(
                {k: record[k] for k in ("id", "path", "dataset", "index", "metrics", "timings")}, indent=2
            )
        )
        return
    data = record["dataset"]
    split = f" ({data['split']})" if data.get("split") else ""
    table = Table("metric", "value", title=f"{data['name']}{split}: {data['queries']} queries")
    for name, value in record["metrics"].items():
        table.add_row(name, _fmt(value))
    out.print(table)
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in record["timings"].items())
    out.print(f"timings: {timings}", highlight=False)
    out.print(f"saved: {record['path']}", highlight=False)


def _print_comparison(a: dict[str, Any], b: dict[str, Any], as_json: bool) -> None:
    from rag_eval.compare import metric_rows, per_query, setting_changes

    rows, changes, queries = metric_rows(a, b), setting_changes(a, b), per_query(a, b)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "a": a["id"],
                    "b": b["id"],
                    "metrics": {m: {"a": va, "b": vb, "delta": d} for m, va, vb, d in rows},
                    "settings": {k: {"a": va, "b": vb} for k, va, vb in changes},
                    "ndcg@10_per_query": queries,
                },
                indent=2,
            )
        )
        return
    table = Table("metric", f"A {a['id']}", f"B {b['id']}", "B - A")
    for name, va, vb, delta in rows:
        style = "" if delta is None or abs(delta) < 5e-5 else ("green" if delta > 0 else "red")
        shown = "" if delta is None else f"[{style}]{delta:+.4f}[/{style}]" if style else f"{delta:+.4f}"
        table.add_row(name, _fmt(va), _fmt(vb), shown)
    out.print(table)
    if a["dataset"].get("queries") != b["dataset"].get("queries") or a["dataset"].get("split") != (
        b["dataset"].get("split")
    ):
        out.print("[yellow]note:[/yellow] the runs used different query sets")
    if changes:
        settings = Table("setting", "A", "B", title="settings that differ")
        for key, va, vb in changes:
            settings.add_row(key, json.dumps(va), json.dumps(vb))
        out.print(settings)
    else:
        out.print("same settings")
    out.print(
        f"nDCG@10 per query, B against A: {queries['better']} better, {queries['worse']} worse, "
        f"{queries['same']} the same",
        highlight=False,
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _print_models(report: dict[str, Any], as_json: bool) -> None:
    from rag_eval.chart import SPEED

    models = report["models"]
    if as_json:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    data = report["dataset"]
    table = Table(
        "",
        *(m["model"] for m in models),
        title=f"{data['name']}: {data['queries']} questions, one model a column",
    )
    for name in dict.fromkeys(k for m in models for k in m["metrics"]):
        table.add_row(name, *(_fmt(m["metrics"].get(name)) for m in models))
    labels = {
        "ttft_s": "time to first token (s)",
        "answer_s": "seconds per answer",
        "gen_tokens_per_s": "generation tokens/s",
        "prompt_tokens_per_s": "prompt tokens/s",
        "peak_rss_mib": "peak RAM (MiB)",
    }
    for name in SPEED:
        table.add_row(labels[name], *(_num(m["speed"].get(name)) for m in models), style="cyan")
    table.add_row("quantization", *(m["quantization"] for m in models))
    table.add_row("file size (MiB)", *(f"{m['file_size'] / 2**20:.0f}" for m in models))
    out.print(table)
    out.print("medians over the answers the models generated on this machine", highlight=False)
    for m in models:
        out.print(f"run {m['model']}: {m['path']}", highlight=False)
    out.print(f"chart: {report['chart']}", highlight=False)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}" if value < 10 else f"{value:.1f}"
