"""Every figure in the README's generated blocks comes from a recorded file, and is up to date.

The results tables and training lines are regenerated from ``metrics/*.json``, ``dvc.lock`` and
``dvclive/*/metrics.json``, the benchmark block from ``benchmarks/results/*.json``; a README that
differs was edited by hand or not regenerated after a run.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import report
from pipelines.learn import results_table

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_results_and_training_lines_match_the_recorded_files() -> None:
    text = README.read_text(encoding="utf-8")
    stance = json.loads((ROOT / "metrics" / "stance.json").read_text(encoding="utf-8"))
    fresh = results_table.replace_block(text, results_table.render_from_dir(ROOT / "metrics"))
    fresh = results_table.replace_block(
        fresh,
        results_table.training_summary(ROOT / "dvc.lock", ROOT / "dvclive", stance),
        markers=(results_table.TRAINING_START, results_table.TRAINING_END),
    )
    assert fresh == text, (
        "README results differ from metrics/, dvc.lock and dvclive/: "
        "run `python -m pipelines.learn.results_table metrics README.md`"
    )


def test_training_lines_name_the_logged_times() -> None:
    live = json.loads((ROOT / "dvclive" / "stance" / "metrics.json").read_text(encoding="utf-8"))
    line = results_table.training_summary(ROOT / "dvc.lock", ROOT / "dvclive")
    assert f"{live['train']['runtime']:,.0f} s" in line
    assert "stance model:" in line and "span tagger:" in line


def test_bench_block_matches_the_recorded_results() -> None:
    text = README.read_text(encoding="utf-8")
    _, rest = text.split(report.START)
    body, _ = rest.split(report.END)
    assert body == "\n" + report.render(), (
        "README benchmark block differs from benchmarks/results/: run `python -m benchmarks.report`"
    )


def test_fnc1_anchors_carry_their_official_rank() -> None:
    names = results_table.SYSTEM_NAMES
    assert names["talos"] == "Talos (FNC-1 official rank 1st, 82.02)"
    assert names["athene"] == "Athene (FNC-1 official rank 2nd, 81.97)"
    assert names["uclmr"] == "UCL Machine Reading (FNC-1 official rank 3rd, 81.72)"


def test_results_from_an_older_benchmark_method_are_marked() -> None:
    old = {"name": "train", "machine": {"date": "d"}, "rows": [{"mfu": 0.5}], "summary": {}}
    current = {**old, "protocol": report.PROTOCOLS["train"][0]}
    assert any("older method" in line for line in report.section("train", old))
    assert not any("older method" in line for line in report.section("train", current))
    # utilisation is labelled with its denominator
    assert "| MFU of measured matmul rate |" in "\n".join(report.section("train", current))
