"""Two saved runs side by side: metrics, their differences, and the settings that differ."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag_eval.datasets import DatasetError


def load_run(ref: str, workdir: Path) -> dict[str, Any]:
    """A run by its file path or its id (a file under workdir/runs)."""
    candidates = [Path(ref), workdir / "runs" / ref, workdir / "runs" / f"{ref}.json"]
    for path in candidates:
        if path.is_file():
            try:
                run: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DatasetError(f"{path} is not a saved run: {exc}") from None
            if not isinstance(run, dict) or "metrics" not in run:
                raise DatasetError(f"{path} is not a saved run (no metrics)")
            run.setdefault("path", str(path))
            return run
    raise DatasetError(f"no run {ref!r} (looked for a file, then in {workdir / 'runs'})")


def metric_rows(
    a: dict[str, Any], b: dict[str, Any]
) -> list[tuple[str, float | None, float | None, float | None]]:
    """(metric, A, B, B - A) for every metric either run has."""
    names = list(dict.fromkeys([*a["metrics"], *b["metrics"]]))
    rows = []
    for name in names:
        va, vb = a["metrics"].get(name), b["metrics"].get(name)
        delta = vb - va if va is not None and vb is not None else None
        rows.append((name, va, vb, delta))
    return rows


def setting_changes(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    keys = sorted(set(a.get("settings", {})) | set(b.get("settings", {})))
    return [
        (k, a["settings"].get(k), b["settings"].get(k))
        for k in keys
        if a["settings"].get(k) != b["settings"].get(k)
    ]


def per_query(a: dict[str, Any], b: dict[str, Any], metric: str = "ndcg@10") -> dict[str, int]:
    """How many shared queries B does better, worse or the same on."""
    scores = {q["id"]: q["metrics"].get(metric) for q in a.get("queries", [])}
    better = worse = same = 0
    for q in b.get("queries", []):
        va, vb = scores.get(q["id"]), q["metrics"].get(metric)
        if va is None or vb is None:
            continue
        if vb > va + 1e-9:
            better += 1
        elif vb < va - 1e-9:
            worse += 1
        else:
            same += 1
    return {"better": better, "worse": worse, "same": same}
