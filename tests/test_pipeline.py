"""Smoke run of the whole DVC pipeline on tiny slices (params.ci.yaml), in a throw-away copy.

Real DVC, real stages, the shared corpus mirror, run the README's way: `make pipeline` in a plain
environment (no venv on PATH; the Makefile must supply it), on this session's installed venv
(``VENV=``, its install step marked done with ``-o`` so the copy never re-points the editable
install). Checks the stage graph runs end to end, that a second run is a no-op, and that changing
one training parameter reruns only what depends on it. `.ci/run` also runs `make pipeline` in a
fresh clone with a fresh venv.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml

from conftest import VENV, copy_repo, run

pytestmark = pytest.mark.slow


def make_pipeline(dest: Path, env: dict[str, str]) -> str:
    stamp = VENV / ".claimtrace-installed"
    return run(["make", "pipeline", f"VENV={VENV}", "-o", str(stamp)], dest, env)


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def project(tmp_path_factory, mirror) -> tuple[Path, dict[str, str]]:
    """A copy of the repository's tracked and unignored files, with the ci params in force."""
    dest = tmp_path_factory.mktemp("pipeline") / "claimtrace"
    return dest, copy_repo(dest, mirror)


@pytest.fixture(scope="module")
def first_run(project) -> str:
    dest, env = project
    return make_pipeline(dest, env)


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
    out = make_pipeline(dest, env)
    print(f"no-op make pipeline: {time.perf_counter() - t0:.1f}s")
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
    out = make_pipeline(dest, env)
    assert stages_run(out) == {"train_stance", "evaluate"}


def test_corpus_holds_the_cleaned_seed_article(project, first_run):
    """The seed article, read from the mirror (never the repo), ingested without its page furniture."""
    from pipelines.core.document import read_articles

    dest, _ = project
    seeds = [a for a in read_articles(dest / "data/corpus/articles.jsonl") if a.origin]
    seed = next(a for a in seeds if a.origin == "file:000_05a0f9568dd331cd.txt")
    assert (
        seed.title and seed.title.startswith("Ukraine cannot confirm") and seed.date == "2024-01-06"
    )
    for furniture in ("Photo Credit", "Top News Today", "Sign in", "Comments", "IST - Kyiv"):
        assert furniture not in seed.text
    assert not seed.text.startswith(seed.title)
    assert not list((dest / "seeds").glob("000_*"))  # read from data/raw/seeds, not copied here
