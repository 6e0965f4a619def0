"""bench/calibrate.py: thresholds chosen on some runs, reported on others, never on the
questions they were chosen on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "bench" / "calibrate.py"


def saved_run(path: Path, name: str, split: str, fits: list[tuple[float, bool]]) -> Path:
    queries = [
        {
            "question": f"What is thing number {n}?",
            "answerable": answerable,
            "grounding": {"top_score": 0.6, "found": True, "fit": fit, "presence": 1.0},
        }
        for n, (fit, answerable) in enumerate(fits)
    ]
    record = {
        "dataset": {"name": name, "split": split},
        "settings": {},
        "processor": "test",
        "queries": queries,
    }
    path.write_text(json.dumps(record))
    return path


def calibrate(*args: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def test_thresholds_come_from_the_calibration_runs_and_are_reported_on_others(tmp_path: Path) -> None:
    # Answerable questions fit at 0.5 and above, unanswerable ones below 0.3.
    on = saved_run(
        tmp_path / "cal.json", "set", "calibration", [(0.5, True), (0.6, True), (0.2, False), (0.25, False)]
    )
    report = saved_run(tmp_path / "test.json", "set", "test", [(0.55, True), (0.1, False)])
    done = calibrate("--on", on, "--report", report)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("en ")]
    assert [row[4] for row in rows] == ["calibration:", "set"]
    assert all(float(row[-3]) == 1.0 and float(row[-2]) == 0.0 for row in rows)  # all abstain, none refused


def test_it_refuses_to_report_on_the_split_it_calibrated_on(tmp_path: Path) -> None:
    on = saved_run(tmp_path / "cal.json", "set", "calibration", [(0.5, True), (0.2, False)])
    again = saved_run(tmp_path / "again.json", "set", "calibration", [(0.5, True), (0.2, False)])
    done = calibrate("--on", on, "--report", again)
    assert done.returncode != 0 and "refused: set (calibration) is calibrated on" in done.stderr
