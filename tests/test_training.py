"""Train both models with the ci parameter set on tiny synthetic datasets; reload and infer."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipelines.core.document import PAIR_STANCES, StancePair
from pipelines.learn import build_dataset, train_stance, train_tagger
from pipelines.models.encoding import PICKLE_SUFFIXES
from pipelines.models.inference import classify_pairs, load_stance, load_tagger, tag_text
from test_build_dataset import REPO, make_document, write_corpus


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    imported, ann = write_corpus(root, n_docs=16, n_pairs=48)
    params = yaml.safe_load((REPO / "params.ci.yaml").read_text())
    for section in ("train_stance", "train_tagger"):  # smaller still: this test trains 4 times
        params[section].update(eval_size=16, max_length=48, logging_steps=1)
    params["train_stance"]["sample"] = dict.fromkeys(params["train_stance"]["sample"], 4)
    params["train_tagger"].update(train_size=32, stride=8)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    build_dataset.command(imported, ann, root / "datasets", params=root / "params.yaml")
    return root


def train_both(root: Path, name: str) -> tuple[Path, Path]:
    params = root / "params.yaml"
    stance, tagger = root / name / "stance", root / name / "tagger"
    train_stance.command(
        root / "datasets" / "stance",
        stance,
        live_dir=root / name / "live" / "stance",
        params=params,
    )
    train_tagger.command(
        root / "datasets" / "tagger",
        tagger,
        live_dir=root / name / "live" / "tagger",
        params=params,
    )
    return stance, tagger


@pytest.mark.slow
def test_train_reload_infer_and_determinism(workdir, tmp_path, monkeypatch):
    stance_dir, tagger_dir = train_both(workdir, "run1")
    for d in (stance_dir, tagger_dir):
        files = {p.name for p in d.iterdir()}
        assert {
            "model.safetensors",
            "config.json",
            "tokenizer.json",
            "training_metrics.json",
            "claimtrace.json",
        } <= files
        assert not [f for f in files if f.endswith(PICKLE_SUFFIXES)]
        metrics = json.loads((d / "training_metrics.json").read_text())
        assert metrics["train_tokens_per_second"] > 0 and metrics["wall_seconds"] > 0
        config = json.loads((d / "config.json").read_text())
        assert config["label2id"] and config["id2label"]
    assert not (workdir / "run1" / ".checkpoints" / "stance").exists()  # removed after success
    live = workdir / "run1" / "live" / "stance"
    assert (live / "metrics.json").is_file() and (live / "plots" / "metrics").is_dir()

    stance = load_stance(stance_dir)
    assert stance.labels == PAIR_STANCES
    assert stance.tokenizer.tokenize("[SRC] x [/SRC]") == [
        "[SRC]",
        "x",
        "[/SRC]",
    ]  # markers saved
    info = json.loads((stance_dir / "claimtrace.json").read_text())
    assert info["context_chars"] == 300
    assert set(info["biases"]) == {"relation", "headline"}  # fitted on validation
    assert stance.relatedness is not None  # the headline/body first stage, JSON (no pickle)
    assert json.loads((stance_dir / "relatedness.json").read_text())["features"]
    doc = make_document(42)
    text = doc.article.text
    pairs = [
        StancePair(
            "a",
            "taxes will rise",
            "[SRC] The ministry [/SRC] said that [CLM] taxes will rise [/CLM].",
            "asserts",
            "g",
            "t",
            "The ministry",
        ),
        StancePair("b", "Taxes will rise", "Long body. " * 100, "unrelated", "g", "t"),
    ]
    got = classify_pairs(stance, pairs, batch_size=1)
    assert len(got) == 2
    for label, probs in got:
        assert label in PAIR_STANCES and abs(sum(probs.values()) - 1) < 1e-3

    tagger_info = json.loads((tagger_dir / "claimtrace.json").read_text())
    # fitted on validation for each label with enough gold spans there (none on this tiny data)
    assert set(tagger_info["span_thresholds"]) <= {"Source", "Claim", "Denial"}
    # read off the training annotations: per label, punctuation characters only
    assert all(set(v) <= set(",.;:") for v in tagger_info["span_trim"].values())
    tagger_metrics = json.loads((tagger_dir / "training_metrics.json").read_text())
    assert tagger_metrics["validation_span_articles"] > 0
    tagger = load_tagger(tagger_dir)
    long_text = text * 8  # several windows
    spans = tag_text(tagger, long_text, batch_size=4)
    assert spans, "the tagger found no span: nothing below would be checked"
    for s in spans:
        assert long_text[s.start : s.end] == s.text and 0 < s.score <= 1
    assert tag_text(tagger, "   ") == []

    # the span-decoding benchmark runs on trained models; thresholds only ever drop spans
    from benchmarks import common, span_decoding

    monkeypatch.setattr(common, "RESULTS", tmp_path)
    rows = span_decoding.main(
        ["--datasets", str(workdir / "datasets" / "tagger"), "--tagger", str(tagger_dir),
         "--model", str(stance_dir)]
    )  # fmt: skip
    assert [r["decoding"] for r in rows] == [v[0] for v in span_decoding.VARIANTS]
    assert rows[3]["spans"] <= rows[1]["spans"] and rows[2]["spans"] <= rows[0]["spans"]
    assert (tmp_path / "span_decoding.json").is_file()

    stance2_dir, tagger2_dir = train_both(workdir, "run2")
    assert classify_pairs(load_stance(stance2_dir), pairs) == classify_pairs(stance, pairs)
    assert tag_text(load_tagger(tagger2_dir), long_text) == spans


def test_ci_params_have_the_same_keys_as_params_yaml():
    """Tests copy params.ci.yaml over params.yaml, so every stage must find all its keys there."""
    full = yaml.safe_load((REPO / "params.yaml").read_text())
    ci = yaml.safe_load((REPO / "params.ci.yaml").read_text())
    assert sorted(ci) == sorted(full), "params.ci.yaml and params.yaml must have the same sections"
    for section, values in full.items():
        if isinstance(values, dict):
            assert sorted(ci[section]) == sorted(values), f"params.ci.yaml [{section}]: keys differ"


def _complete_checkpoint(root: Path) -> Path | None:
    """A checkpoint whose trainer state (saved last) is readable: what a resume can start from."""
    for d in root.glob("checkpoint-*"):
        try:
            json.loads((d / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        return d
    return None


@pytest.mark.slow
def test_killed_training_resumes_from_its_last_checkpoint(workdir, tmp_path):
    """A SIGKILLed run (OOM killer, preempted CI job) must lose at most one epoch, not the whole
    training: the rerun resumes from the last complete checkpoint, skipping one torn by the kill."""
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    # 3 epochs of 2 steps, checkpointed per epoch; 1 thread: the machine is shared
    params["train_stance"].update(epochs=3, batch_size=8, eval_size=4, torch_threads=1)
    params["train_stance"]["sample"] = {"relation/asserts": 8, "relation/denies": 8}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "models" / "stance"
    ckpt = tmp_path / "models" / ".checkpoints" / "stance"
    cmd = [
        sys.executable, "-m", "pipelines.learn.train_stance",
        str(workdir / "datasets" / "stance"), str(out),
        "--live-dir", str(tmp_path / "live"), "--params", str(tmp_path / "params.yaml"),
    ]  # fmt: skip
    env = os.environ | {"HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}

    with (tmp_path / "killed.log").open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=log, stderr=log, start_new_session=True
        )
        try:
            # the event: the first complete checkpoint (the deadline only stops a hang)
            deadline = time.monotonic() + 600
            while _complete_checkpoint(ckpt) is None and proc.poll() is None:
                assert time.monotonic() < deadline, "no checkpoint within 600 s"
                time.sleep(0.02)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, (
        f"training ended before the kill:\n{(tmp_path / 'killed.log').read_text()[-3000:]}"
    )
    assert not out.exists()  # nothing published by the killed run
    last = _complete_checkpoint(ckpt)
    assert last is not None and (ckpt / "fingerprint.txt").is_file()
    killed_at = int(last.name.rsplit("-", 1)[1])
    # a save cut short by the kill: a later checkpoint folder without its trainer state
    torn = ckpt / "checkpoint-999"
    torn.mkdir(exist_ok=True)
    (torn / "config.json").write_text("{}")

    done = subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "training_metrics.json").read_text())
    assert metrics["resumed"] is True
    # same as an uninterrupted run
    assert metrics["steps"] == 3 * math.ceil(metrics["train_examples"] / 8)
    assert 0 < killed_at < metrics["steps"]  # the kill landed mid-training
    assert load_stance(out).labels == PAIR_STANCES
    assert not ckpt.exists()  # removed after success
