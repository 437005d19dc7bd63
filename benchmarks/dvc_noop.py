"""DVC overhead: seconds of a no-op ``dvc repro`` and of a rerun after one parameter change.

Runs in a throw-away copy holding the project's own ``fetch`` and ``ingest`` stages (the
smallest ones; fetch copies one corpus from ``$CLAIMTRACE_DATA_MIRROR``), so the real
workspace is never touched: first repro (cold), no-op repro and ``dvc status`` (median of
``--repeats``), then ``ingest.min_chars`` changed and repro again (only ingest reruns).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from benchmarks.common import ROOT, write_result

STAGES = ("fetch", "ingest")


def sh(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    return seconds, proc.stdout + proc.stderr


DVC = str(Path(sys.executable).parent / "dvc")  # this venv's dvc by path; PATH left alone


def make_repo(dest: Path, corpus: str) -> None:
    """The stages' code, inputs and params (one small corpus) in a fresh git + DVC repo."""
    shutil.copytree(
        ROOT / "pipelines", dest / "pipelines", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copytree(ROOT / "seeds", dest / "seeds")
    shutil.copy2(ROOT / ".dvcignore", dest / ".dvcignore")  # code folders' .pyc are no deps
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    # the stages' `python` named by path, as `make pipeline` puts it first on PATH
    for k in STAGES:
        stages[k]["cmd"] = stages[k]["cmd"].replace("python ", f"{sys.executable} ", 1)
    (dest / "dvc.yaml").write_text(
        yaml.safe_dump({"stages": {k: stages[k] for k in STAGES}}, sort_keys=False)
    )
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["fetch"]["corpora"] = [corpus, "seeds"]  # ingest reads data/raw/seeds
    (dest / "params.yaml").write_text(
        yaml.safe_dump({k: params[k] for k in STAGES}, sort_keys=False)
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--corpus", default="emergent", help="the corpus fetch copies (smallest: emergent)"
    )
    args = ap.parse_args(argv)
    mirror = os.environ.get("CLAIMTRACE_DATA_MIRROR") or str(ROOT.parent / "shared" / "data")
    if not Path(mirror).is_dir():
        mirror = "/work/shared/data"
    env = {
        **os.environ,
        "CLAIMTRACE_DATA_MIRROR": str(Path(mirror).resolve()),
        "DVC_NO_ANALYTICS": "1",
    }
    env.pop("PYTHONPATH", None)
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        make_repo(repo, args.corpus)
        sh(["git", "init", "-q"], repo, env)
        sh([DVC, "init", "-q"], repo, env)
        cold, _ = sh([DVC, "repro"], repo, env)
        noop, status = [], []
        for _ in range(args.repeats):
            sec, out = sh([DVC, "repro"], repo, env)
            assert not re.search(r"Running stage", out), f"second repro was not a no-op:\n{out}"
            noop.append(sec)
            status.append(sh([DVC, "status"], repo, env)[0])
        params = yaml.safe_load((repo / "params.yaml").read_text())
        params["ingest"]["min_chars"] += 1
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        rerun, out = sh([DVC, "repro"], repo, env)
        ran = sorted(set(re.findall(r"Running stage '([^']+)'", out)))
    rows = [
        {"measure": "first repro (cold: fetch + ingest)", "seconds": round(cold, 2)},
        {"measure": "no-op repro (median)", "seconds": round(statistics.median(noop), 2)},
        {"measure": "dvc status (median)", "seconds": round(statistics.median(status), 2)},
        {
            "measure": f"repro after ingest.min_chars change (ran {', '.join(ran)})",
            "seconds": round(rerun, 2),
        },
    ]
    for r in rows:
        print(f"{r['measure']:55s} {r['seconds']:6.2f}s")
    summary = {
        "noop_repro_s": rows[1]["seconds"],
        "param_change_rerun_s": rows[3]["seconds"],
        "stages_rerun": ran,
    }
    write_result(
        "dvc_noop",
        rows,
        summary,
        notes=f"throw-away repo with the fetch ({args.corpus}) and ingest stages",
    )
    return summary


if __name__ == "__main__":
    main()
