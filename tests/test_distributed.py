"""Data-parallel training: the CI-sized stance and tagger runs under torchrun with 2 CPU
processes (DDP over gloo), as the README's multi-GPU / multi-node commands run them on GPUs.

Checks that the run ends cleanly, that each worker took half the optimiser steps' examples
(the global batch doubles, so the steps halve), and that exactly one model folder was written,
by rank 0, with the same files as a single-process run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.learn import build_dataset
from test_build_dataset import REPO, write_corpus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp")
    imported, ann = write_corpus(root, n_docs=16, n_pairs=48)
    params = yaml.safe_load((REPO / "params.ci.yaml").read_text())
    for section in ("train_stance", "train_tagger"):
        params[section].update(eval_size=16, max_length=48, logging_steps=1, torch_threads=1)
        params[section].update(batch_size=4, epochs=1)
    params["train_stance"]["sample"] = dict.fromkeys(params["train_stance"]["sample"], 4)
    params["train_tagger"].update(train_size=32, stride=8)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    build_dataset.command(imported, ann, root / "datasets", params=root / "params.yaml")
    return root


def torchrun(root: Path, task: str, nproc: int, name: str) -> tuple[Path, str]:
    out = root / name / task
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
        "--standalone", "-m", f"pipelines.learn.train_{task}",
        str(root / "datasets" / task), str(out),
        "--live-dir", str(root / name / "live" / task), "--params", str(root / "params.yaml"),
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out, proc.stderr


@pytest.mark.parametrize("task", ["stance", "tagger"])
def test_two_cpu_processes_train_one_model(workdir: Path, task: str) -> None:
    single, _ = torchrun(workdir, task, 1, "single")
    ddp, log = torchrun(workdir, task, 2, "ddp")
    one = json.loads((single / "training_metrics.json").read_text())
    two = json.loads((ddp / "training_metrics.json").read_text())
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert two["train_examples"] == one["train_examples"]
    # each step now takes a batch per worker: half the steps (rounded up per worker)
    assert two["steps"] == -(-one["train_examples"] // (2 * 4))
    assert one["steps"] == -(-one["train_examples"] // 4)
    # one model, saved once by rank 0, with the single-process run's files
    assert sorted(p.name for p in ddp.iterdir()) == sorted(p.name for p in single.iterdir())
    assert not list(ddp.parent.glob(f".{task}*")), "a temporary model folder was left behind"
    assert log.count(f"[train_{task}]") == 1, "only rank 0 reports the stage"
    live = workdir / "ddp" / "live" / task / "metrics.json"
    assert live.is_file()
