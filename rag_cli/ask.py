"""`rag ask "QUESTION"`, or an interactive session with no question."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from rag.errors import RagError
from rag.util import console_text, printable
from rag_cli.app import (
    ConfigOpt,
    IndexOpt,
    LangFilterOpt,
    PathFilterOpt,
    SetOpt,
    SinceOpt,
    TypeFilterOpt,
    UntilOpt,
    app,
    err,
    filters_from,
    out,
    settings_from,
)

if TYPE_CHECKING:  # the core loads when a question is asked, not for every command
    from rag.generators.base import GenerationParams, Message
    from rag.pipeline import Pipeline
    from rag.store import Filters
    from rag.types import Answer


@app.command("ask")
def ask_command(
    question: Annotated[
        str | None, typer.Argument(help="The question; none starts an interactive session.")
    ] = None,
    index: IndexOpt = None,
    top_k: int | None = typer.Option(None, "--top-k", "-k", help="Chunks to retrieve."),
    min_score: float | None = typer.Option(None, help="Ignore chunks scoring below this."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
    max_tokens: int | None = typer.Option(None, help="Most tokens in the answer."),
    temperature: float | None = typer.Option(None, help="Sampling temperature."),
    top_p: float | None = typer.Option(None, help="Nucleus sampling threshold."),
    seed: int | None = typer.Option(None, help="Sampling seed, for repeatable answers."),
    model: str | None = typer.Option(None, help="GGUF model file (default: packaged SmolLM2)."),
    n_ctx: int | None = typer.Option(None, help="Model context size in tokens."),
    path: PathFilterOpt = None,
    type_: TypeFilterOpt = None,
    lang: LangFilterOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Answer a question from an index, with its sources."""
    settings = settings_from(
        config,
        set_,
        **{
            "llm.model_path": model,
            "llm.n_ctx": n_ctx,
            "retrieval.top_k": top_k,
            "retrieval.min_score": min_score,
            "llm.max_tokens": max_tokens,
            "llm.temperature": temperature,
            "llm.top_p": top_p,
            "llm.seed": seed,
        },
    )
    from rag.generators.base import GenerationParams
    from rag.pipeline import Pipeline

    filters = filters_from(path, type_, lang, since, until)  # a bad filter: an error before loading
    pipeline = Pipeline.from_settings(settings)
    pipeline.index(index)  # a missing index is an error before any question
    params = GenerationParams.from_settings(settings.llm)
    if question is not None:
        _answer(pipeline, question, [], index, params, as_json, filters)
        return
    _interactive(pipeline, index, params, as_json, filters)


def _answer(
    pipeline: Pipeline,
    question: str,
    history: list[Message],
    index: str | None,
    params: GenerationParams,
    as_json: bool,
    filters: Filters | None = None,
) -> Answer:
    stream_text = not as_json and out.is_terminal
    from rag.pipeline import DoneEvent, TokenEvent

    answer: Answer | None = None
    for event in pipeline.stream(question, history=history, index=index, params=params, filters=filters):
        if isinstance(event, TokenEvent) and stream_text:
            out.print(event.text, end="", highlight=False, markup=False)
        elif isinstance(event, DoneEvent):
            answer = event.answer
    assert answer is not None
    if as_json:
        data = asdict(answer)
        data = {"answer": data.pop("text"), **data}  # the same key as the HTTP API
        data["usage"]["total_tokens"] = answer.usage.total_tokens
        data["unsupported"] = answer.unsupported
        for source, given in zip(data["sources"], answer.sources, strict=True):
            source.pop("text", None)
            source["quotes"] = [given.text[a:b] for a, b in given.spans]
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return answer
    if not stream_text:
        out.print(answer.text, highlight=False, markup=False)
    elif _same_words(answer.text, answer.draft or answer.text):
        out.print()
    else:  # what was streamed is the model's draft; this is what the documents back
        out.print("\n\nFrom the documents:" if not answer.abstained else "\n", style="bold")
        out.print(answer.text, highlight=False, markup=False)
    unsupported = answer.unsupported
    if unsupported and not answer.abstained:
        out.print("\nNot supported by the documents:", style="bold yellow")
        for sentence in unsupported:
            out.print(f"  - {sentence}", highlight=False, markup=False)
    _print_sources(answer)
    return answer


def _same_words(a: str, b: str) -> bool:
    from rag.grounding.attribution import strip_citations

    return strip_citations(a).split() == strip_citations(b).split()


def _print_sources(answer: Answer) -> None:
    if not answer.sources:
        return
    cited = [s for s in answer.sources if s.cited] or answer.sources
    out.print("\nSee also:" if answer.abstained else "\nSources:", style="bold")
    cwd = os.getcwd() + os.sep
    for s in cited:
        where = s.path.removeprefix(cwd)
        if s.pages:
            where += f", page {s.pages}"
        if s.heading:
            where += f" ({s.heading})"
        out.print(f"  [{s.number}] {printable(where)}  score {s.score:.2f}", highlight=False, markup=False)
        for start, end in s.spans[:2]:  # the passage's words that back the answer
            quote = " ".join(s.text[start:end].split())
            out.print(
                f"      “{quote[:200]}{'…' if len(quote) > 200 else ''}”",
                highlight=False,
                markup=False,
                style="dim",
            )


def _interactive(
    pipeline: Pipeline,
    index: str | None,
    params: GenerationParams,
    as_json: bool,
    filters: Filters | None = None,
) -> None:
    history: list[Message] = []
    if out.is_terminal:
        err.print("Ask a question (an empty line or Ctrl-D ends the session).")
    while True:
        try:
            question = input("> " if out.is_terminal else "").strip()
        except EOFError:
            break
        if not question:
            break
        try:
            answer = _answer(pipeline, question, history, index, params, as_json, filters)
        except RagError as exc:
            err.print(f"error: {console_text(exc)}", highlight=False)
            continue
        history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer.text}]
