"""Calibrate the abstention thresholds on saved `rag eval` runs, and report them on others.

    python bench/calibrate.py --on CAL_RUN.json [...] --report TEST_RUN.json [...]

The runs come from sets with answerable and unanswerable questions (some say
"answerable": false). A question is answered that the documents do not say when nothing
passes `retrieval.min_score`, when the passages answer it less than `answer.min_fit` for
its language (rag.grounding: the mean of the best retrieval score and of how well the
best passage sentence fits the question), or when no short window of them holds what it
asks, below `answer.min_presence` (rag.grounding.presence). None depends on the model's answer, so
each value is scored from the runs alone, language by language: the abstention rate on
unanswerable questions and the share of answerable ones refused.

The values are chosen on the `--on` runs only: per language, the best abstention among
those refusing at most `--max-refused` (0.10) of answerable questions. They are then
scored on the `--report` runs, which must be other questions: a report run of the same
dataset and split as a calibration run is refused.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

from rag.analysis import detect_language
from rag.hardware import processor_line

MIN_SCORES = (0.2,)  # retrieval.min_score's default: one value for every language, not searched
MIN_FITS = tuple(step / 100 for step in range(30, 96))  # to 0.95: e5 cosines run high
MIN_PRESENCES = tuple(step / 20 for step in range(17))  # 0 to 0.8


def abstains(q: dict[str, Any], min_score: float, min_fit: float, min_presence: float) -> bool:
    g = q["grounding"]
    return (
        g["top_score"] < min_score
        or not g["found"]
        or (g["fit"] + g["top_score"]) / 2 < min_fit
        or g.get("presence", 1.0) < min_presence
    )


def rates(queries: list[dict[str, Any]], values: tuple[float, float, float]) -> tuple[float, float]:
    """Abstention on unanswerable questions, and the share of answerable ones refused."""
    unanswerable = [q for q in queries if q.get("answerable") is False]
    answerable = [q for q in queries if q.get("answerable", True) is not False]
    abstention = sum(abstains(q, *values) for q in unanswerable) / len(unanswerable) if unanswerable else 0.0
    refused = sum(abstains(q, *values) for q in answerable) / len(answerable) if answerable else 0.0
    return abstention, refused


def calibrate(
    queries: list[dict[str, Any]], max_refused: float, presence: bool
) -> tuple[float, float, float]:
    """The (min_score, min_fit, min_presence) with the best abstention refusing at most
    `max_refused`; ties go to the lower thresholds."""
    presences = MIN_PRESENCES if presence else (0.0,)
    best: tuple[float, tuple[float, float, float]] | None = None
    for values in itertools.product(MIN_SCORES, MIN_FITS, presences):
        abstention, refused = rates(queries, values)
        if refused <= max_refused and (best is None or abstention > best[0]):
            best = (abstention, values)
    return best[1] if best else (MIN_SCORES[0], MIN_FITS[0], 0.0)


def load(paths: list[Path]) -> tuple[list[dict[str, Any]], set[tuple[str, str | None]]]:
    queries: list[dict[str, Any]] = []
    sets: set[tuple[str, str | None]] = set()
    for path in paths:
        record = json.loads(path.read_text())
        data = record["dataset"]
        sets.add((data["name"], data.get("split")))
        queries += [
            q | {"set": f"{data['name']} ({data.get('split')})"}
            for q in record["queries"]
            if "grounding" in q
        ]
        print(
            f"{path.name}: {data['name']} ({data.get('split')}), {len(record['queries'])} questions, "
            f"processor: {record.get('processor', 'not recorded')}"
        )
    return queries, sets


def by_language(queries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for q in queries:
        found.setdefault(detect_language(q["question"]), []).append(q)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--on", nargs="+", type=Path, required=True, help="runs to calibrate on")
    parser.add_argument("--report", nargs="*", type=Path, default=[], help="runs to report on")
    parser.add_argument("--max-refused", type=float, default=0.10)
    parser.add_argument("--no-presence", action="store_true", help="min_fit and min_score only")
    parser.add_argument(
        "--use",
        nargs="*",
        default=[],
        metavar="LANG=MIN_FIT,MIN_PRESENCE",
        help="score these values, not calibrated ones: en=0.47,0 fr=0.53,0",
    )
    args = parser.parse_args()
    print(processor_line())
    calibration, cal_sets = load(args.on)
    report, report_sets = load(args.report) if args.report else ([], set())
    shared = cal_sets & report_sets
    if shared:
        sys.exit(
            f"refused: {', '.join(f'{n} ({s})' for n, s in sorted(shared, key=str))} is calibrated on; "
            "report on another split or set"
        )
    chosen: dict[str, tuple[float, float, float]] = {}
    print(
        f"\n{'lang':4} {'min_score':>9} {'min_fit':>7} {'min_presence':>12}  {'set':24} "
        f"{'abstention':>10} {'refused':>8} {'questions':>9}"
    )
    given = {lang: tuple(map(float, v.split(","))) for lang, v in (u.split("=") for u in args.use)}
    for lang, asked in sorted(by_language(calibration).items()):
        if lang in given:
            values = chosen[lang] = (MIN_SCORES[0], given[lang][0], given[lang][1])
        else:
            values = chosen[lang] = calibrate(asked, args.max_refused, not args.no_presence)
        _row(lang, values, "calibration: all", asked)
    for lang, asked in sorted(by_language(report).items()):
        if lang in chosen:
            for name in sorted({q["set"] for q in asked}):
                _row(lang, chosen[lang], name, [q for q in asked if q["set"] == name])
    found = [
        f"answer.min_fit.{lang}={v[1]} answer.min_presence.{lang}={v[2]}"
        for lang, v in sorted(chosen.items())
    ]
    print("\nsettings: " + " ".join(found))


def _row(lang: str, values: tuple[float, float, float], name: str, asked: list[dict[str, Any]]) -> None:
    abstention, refused = rates(asked, values)
    n_un = sum(q.get("answerable") is False for q in asked)
    print(
        f"{lang:4} {values[0]:9.2f} {values[1]:7.2f} {values[2]:12.2f}  {name:24} {abstention:10.3f} "
        f"{refused:8.3f} {n_un:>4}+{len(asked) - n_un:<4}"
    )


if __name__ == "__main__":
    main()
