"""Quality against latency, one point per model: a self-contained HTML page (inline SVG,
no script, no external file), readable offline and attachable to a report."""

from __future__ import annotations

from html import escape
from typing import Any

WIDTH, HEIGHT, PAD = 640, 400, 60
#: A comparison's quality metrics, the first one measured goes on the chart's axis; its speed figures.
QUALITY = ("contains", "f1", "supported_rate", "citation_precision", "abstention")
SPEED = ("ttft_s", "answer_s", "gen_tokens_per_s", "prompt_tokens_per_s", "peak_rss_mib")


def quality_metric(report: dict[str, Any]) -> str | None:
    """The metric the chart puts on its quality axis."""
    for name in QUALITY:
        if any(m["metrics"].get(name) is not None for m in report["models"]):
            return name
    return None


def quality_latency_page(report: dict[str, Any]) -> str:
    """The page for a `compare_models` report: the chart, then the table of figures."""
    metric = quality_metric(report)
    models = report["models"]
    points = [
        (m["model"], m["speed"].get("answer_s"), m["metrics"].get(metric) if metric else None) for m in models
    ]
    svg = _svg(points, metric or "quality")
    names = sorted({k for m in models for k in m["metrics"]})
    head = "".join(f"<th>{escape(m['model'])}</th>" for m in models)
    rows = [
        f"<tr><td>{escape(n)}</td>"
        + "".join(f"<td>{_fmt(m['metrics'].get(n))}</td>" for m in models)
        + "</tr>"
        for n in names
    ]
    rows += [
        f"<tr><td>{escape(n)}</td>" + "".join(f"<td>{_fmt(m['speed'].get(n))}</td>" for m in models) + "</tr>"
        for n in SPEED
    ]
    rows.append(
        "<tr><td>quantization</td>"
        + "".join(f"<td>{escape(m['quantization'])}</td>" for m in models)
        + "</tr>"
    )
    data = report["dataset"]
    title = f"Models on {escape(str(data['name']))}: {data['queries']} questions"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child{{text-align:left}}</style></head>
<body><h1>{title}</h1>
<p>Each point is a model: up is better answers ({escape(metric or "no answer metric")}), left is
faster (median seconds per answer on this machine).</p>
{svg}
<table><tr><th>metric</th>{head}</tr>
{"".join(rows)}
</table></body></html>
"""


def _svg(points: list[tuple[str, float | None, float | None]], metric: str) -> str:
    shown = [(n, x, y) for n, x, y in points if x is not None and y is not None]
    xs = [x for _, x, _ in shown] or [1.0]
    x_max = max(xs) * 1.15 or 1.0
    y_max = max(1.0, *(y for _, _, y in shown)) if shown else 1.0

    def at(x: float, y: float) -> tuple[float, float]:
        return (PAD + x / x_max * (WIDTH - 2 * PAD), HEIGHT - PAD - y / y_max * (HEIGHT - 2 * PAD))

    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'role="img" aria-label="{escape(metric)} against seconds per answer">'
        ),
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#444"/>',
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#444"/>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 15}" text-anchor="middle">seconds per answer (median)</text>',
        (
            f'<text x="15" y="{HEIGHT / 2}" transform="rotate(-90 15 {HEIGHT / 2})" '
            f'text-anchor="middle">{escape(metric)}</text>'
        ),
    ]
    for i in range(5):
        gx, gy = x_max * i / 4, y_max * i / 4
        px, _ = at(gx, 0)
        _, py = at(0, gy)
        parts.append(
            f'<text x="{px:.1f}" y="{HEIGHT - PAD + 18}" text-anchor="middle" font-size="11">{gx:.2f}</text>'
        )
        parts.append(f'<text x="{PAD - 6}" y="{py + 4:.1f}" text-anchor="end" font-size="11">{gy:.2f}</text>')
    for name, x, y in shown:
        px, py = at(x, y)
        parts.append(
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="6" fill="#2a6fdb"><title>{escape(name)}: '
            f"{y:.3f} in {x:.2f} s</title></circle>"
        )
        parts.append(f'<text x="{px + 9:.1f}" y="{py - 8:.1f}" font-size="12">{escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) and abs(value) < 10 else escape(str(value))
