"""DVC's views stay usable: the README's `dvc exp show` fits a terminal, and `dvc plots show`'s
output folder is ignored by git. (That the plots draw offline: tests/test_plots_browser.py.)"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 120


def test_readme_exp_show_invocation_fits_a_terminal():
    """Before: 327 columns. The README's command, run as printed (this venv's dvc by path)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (line,) = re.findall(r"^\.venv/bin/dvc exp show .*$", readme, re.MULTILINE)
    argv = shlex.split(line)
    argv[0] = str(Path(sys.executable).parent / "dvc")
    proc = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=os.environ | {"COLUMNS": str(WIDTH)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(map(len, lines)) <= WIDTH, proc.stdout
    header = next(x for x in lines if "Experiment" in x)
    assert "fnc_score" in header and "epochs" in header, proc.stdout  # none cut off
    assert "…" not in proc.stdout


def test_plots_output_is_ignored_by_git():
    proc = subprocess.run(
        ["git", "check-ignore", "-q", "dvc_plots/index.html"], cwd=ROOT, timeout=60
    )
    assert proc.returncode == 0
