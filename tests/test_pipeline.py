"""Smoke run of the whole DVC pipeline on tiny slices (params.ci.yaml), in a throw-away copy.

Real DVC, real stages, the shared corpus mirror: checks the stage graph runs end to end, that a
second `dvc repro` is a no-op, and that changing one training parameter reruns only what depends
on it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
SKIPPED = ("tests/", ".venv/", "metrics/", "dvclive/", "benchmarks/")


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{out[-6000:]}"
    return out


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def project(tmp_path_factory, mirror) -> tuple[Path, dict[str, str]]:
    """A copy of the repository's tracked and unignored files, with the ci params in force."""
    dest = tmp_path_factory.mktemp("pipeline") / "claimtrace"
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        src = ROOT / name
        # the committed run's dvc.lock and metrics stay behind: this is a first run from scratch
        if src.is_file() and name != "dvc.lock" and not name.startswith(SKIPPED):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    shutil.copy2(ROOT / "params.ci.yaml", dest / "params.yaml")
    env = {
        **os.environ,
        "CLAIMTRACE_DATA_MIRROR": str(mirror),
        "HF_HUB_OFFLINE": "1",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env |= dict.fromkeys(("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"), "claimtrace-test")
    env |= dict.fromkeys(("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"), "test@claimtrace.invalid")
    run(["git", "init", "-q"], dest, env)
    run(["dvc", "init", "-q", "-f"], dest, env)
    run(["git", "add", "-A"], dest, env)
    run(
        ["git", "commit", "-qm", "claimtrace copy"], dest, env
    )  # DVCLive needs a commit to log against
    return dest, env


@pytest.fixture(scope="module")
def first_run(project) -> str:
    dest, env = project
    return run(["dvc", "repro"], dest, env)


def test_every_stage_runs_and_writes_its_outputs(project, first_run):
    dest, _ = project
    stages = yaml.safe_load((dest / "dvc.yaml").read_text())["stages"]
    assert stages_run(first_run) == set(stages)
    for name, stage in stages.items():
        for out in stage.get("outs", []):
            path = next(iter(out)) if isinstance(out, dict) else out
            assert (dest / path).exists(), f"stage {name} did not write {path}"
    assert (dest / "dvc.lock").exists()


def test_second_repro_is_a_no_op(project, first_run):
    dest, env = project
    t0 = time.perf_counter()
    out = run(["dvc", "repro"], dest, env)
    print(f"no-op dvc repro: {time.perf_counter() - t0:.1f}s")
    assert stages_run(out) == set()
    assert "up to date" in out


def test_datasets_built_from_the_real_corpora_keep_each_article_in_one_split(project, first_run):
    """The data test on the real corpora: what build_dataset made of the mirror in this run."""
    from datasets import load_from_disk

    from test_build_dataset import assert_invariants

    out = project[0] / "data" / "datasets"
    stance = load_from_disk(str(out / "stance"))
    tagger = load_from_disk(str(out / "tagger"))
    assert_invariants(
        stance, tagger
    )  # no article (group) in two splits; test sets never trained on
    assert len(stance["test_fnc1"]) == 25413  # the whole FNC-1 competition test set
    assert len(stance["train"]) and len(stance["test_polnear"]) and len(tagger["train"])
    assert "train" in json.loads((out / "stance" / "dataset_dict.json").read_text())["splits"]


def test_one_training_param_reruns_only_its_dependants(project, first_run):
    dest, env = project
    params_path = dest / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["train_stance"]["learning_rate"] = params["train_stance"]["learning_rate"] * 2
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    out = run(["dvc", "repro"], dest, env)
    assert stages_run(out) == {"train_stance", "evaluate"}
