"""The evaluate stage: helpers on hand-made cases, then a real run on tiny datasets and models."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import traceback
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.core.document import StancePair
from pipelines.core.stagelog import log
from pipelines.learn import evaluate, results_table
from pipelines.sources.corpora import fnc1


def pair(i, claim, context="ctx", stance="asserts", source=None, prefix="p"):
    return StancePair(
        id=f"{prefix}{i}",
        claim=claim,
        context=context,
        stance=stance,
        group=f"g{i}",
        origin="t",
        source=source,
    )


def write_submission(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Headline", "Body ID", "Stance"])
        w.writerows(rows)
    return path


def test_read_fnc_submission_checks_columns_and_labels(tmp_path):
    ok = write_submission(tmp_path / "ok.csv", [("A, with comma\nand newline", "1", "agree")])
    assert fnc1.read_fnc_submission(ok) == [fnc1.FncRow("A, with comma\nand newline", "1", "agree")]
    bad = write_submission(tmp_path / "bad.csv", [("A", "1", "agree"), ("B", "2", "asserts")])
    with pytest.raises(ValueError, match=r"bad.csv: data row 2: stance 'asserts'"):
        fnc1.read_fnc_submission(bad)
    (tmp_path / "cols.csv").write_text("Headline,Stance\nA,agree\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"missing columns \['Body ID'\]"):
        fnc1.read_fnc_submission(tmp_path / "cols.csv")


def test_anchor_predictions_follow_row_ids_and_check_headlines(tmp_path):
    rows = [
        fnc1.FncRow("First  headline", "1", "agree"),
        fnc1.FncRow("Second", "2", "unrelated"),
    ]
    pairs = [pair(1, "second", prefix="fnc1:test:"), pair(0, "First headline", prefix="fnc1:test:")]
    assert fnc1.anchor_predictions(rows, pairs, Path("a.csv")) == ["unrelated", "asserts"]
    with pytest.raises(ValueError, match="does not match test pair 'fnc1:test:0'"):
        fnc1.anchor_predictions(rows, [pair(0, "Other", prefix="fnc1:test:")], Path("a.csv"))
    with pytest.raises(ValueError, match="has no row"):
        fnc1.anchor_predictions(rows, [pair(5, "x", prefix="fnc1:test:")], Path("a.csv"))


def test_sample_indices_is_seeded_and_ordered():
    assert evaluate.sample_indices(5, None, 1) == [0, 1, 2, 3, 4]
    assert evaluate.sample_indices(5, 10, 1) == [0, 1, 2, 3, 4]
    a = evaluate.sample_indices(100, 10, 7)
    assert a == sorted(a) and len(set(a)) == 10 and a == evaluate.sample_indices(100, 10, 7)
    assert a != evaluate.sample_indices(100, 10, 8)


def test_dedupe_pairs_counts_conflicts():
    pairs = [
        pair(1, "Claim A", "Body"),
        pair(2, "claim  a", "body", stance="denies"),  # same text after normalisation, other label
        pair(3, "Claim A", "Body"),
        pair(4, "Claim B", "Body"),
    ]
    kept, dropped, conflicts = evaluate.dedupe_pairs(pairs)
    assert [p.id for p in kept] == ["p1", "p4"] and dropped == 2 and conflicts == 1


def test_tfidf_baseline_learns_word_overlap():
    train = []
    for i, topic in enumerate(
        ["bridge collapse", "vaccine trial", "election fraud", "oil spill", "bank merger"] * 4
    ):
        train.append(
            pair(i, f"{topic} confirmed", f"officials confirmed the {topic} today", "asserts")
        )
        train.append(
            pair(100 + i, f"{topic} confirmed", "a recipe for apple pie with cinnamon", "unrelated")
        )
    model = evaluate.TfidfBaseline(1000, 10.0, 0).fit(train)
    test = [
        pair(0, "bridge collapse confirmed", "the bridge collapse was confirmed"),
        pair(1, "oil spill confirmed", "apple pie"),
    ]
    assert model.predict(test) == ["asserts", "unrelated"]


def test_pair_set_metrics_label_sets():
    gold = ["asserts", "denies", "unrelated"]
    m = evaluate.pair_set_metrics(gold, {"a": gold, "b": ["unrelated"] * 3}, fnc=True)
    assert m["labels"] == ["asserts", "denies", "unconfirmed", "unrelated"]
    assert m["systems"]["a"]["fnc_score"] == 100.0 and m["systems"]["a"][
        "related_macro_f1"
    ] == pytest.approx(2 / 3)
    assert m["support"] == {"asserts": 1, "denies": 1, "unconfirmed": 0, "unrelated": 1}
    three = evaluate.pair_set_metrics(["asserts", "denies"], {"a": ["asserts", "unrelated"]})
    assert three["labels"] == ["asserts", "denies", "unconfirmed"]
    assert (
        "fnc_score" not in three["systems"]["a"] and "related_macro_f1" not in three["systems"]["a"]
    )
    assert three["systems"]["a"]["accuracy"] == 0.5


def test_replace_block():
    doc = "# T\n\n<!-- results:start -->\nold\n<!-- results:end -->\ntail\n"
    assert (
        results_table.replace_block(doc, "new\n")
        == "# T\n\n<!-- results:start -->\nnew\n<!-- results:end -->\ntail\n"
    )
    for broken in ("no markers", "<!-- results:end --> <!-- results:start -->", doc + doc):
        with pytest.raises(ValueError, match="exactly one"):
            results_table.replace_block(broken, "x")


# --- a real run ---------------------------------------------------------------------------------

HEADLINES = [
    ("The minister said taxes will rise", "asserts", "agree"),
    ("The company never sold user data", "denies", "disagree"),
    ("The mayor may resign", "unconfirmed", "discuss"),
    ("Aliens landed in Ohio", "unrelated", "unrelated"),
    ("Police fired no shots", "denies", "agree"),
    ("The plant is safe", "asserts", "unrelated"),
]


def _tiny_eval_data(root: Path, models_root: Path) -> tuple[Path, Path]:
    """Stance and tagger DatasetDicts shaped like build_dataset's, and an anchors folder."""
    from datasets import Dataset, DatasetDict, load_from_disk

    from pipelines.learn.dataset_rows import stance_features

    stance = load_from_disk(str(models_root / "datasets" / "stance"))
    features = stance_features()
    labels = features["stance"].names

    def rows(prefix, items):
        return Dataset.from_dict(
            {
                "id": [f"{prefix}{i}" for i in range(len(items))],
                "claim": [c for c, _, _ in items],
                "context": [x for _, x, _ in items],
                "source": [None] * len(items),
                "stance": [labels.index(s) for _, _, s in items],
                "group": [f"{prefix}g{i}" for i in range(len(items))],
                "subset": ["t"] * len(items),
                "origin": ["t"] * len(items),
                "annotator": [None] * len(items),
                "generated": [False] * len(items),
            },
            features=features,
        )

    fnc = [(h, f"Reports today: {h.lower()}, officials said.", s) for h, s, _ in HEADLINES]
    emergent = [(h, f"{h}, sources said.", s) for h, s, _ in HEADLINES if s != "unrelated"]
    dd = DatasetDict(
        {
            "train": stance["train"],
            "validation": stance["validation"],
            "test_fnc1": rows("fnc1:test:", fnc),
            "test_emergent": rows("emergent:", emergent + emergent[:2]),  # two exact duplicates
            "test_polnear": stance["test_polnear"],
            "test_annotations": rows("ann:", []),
        }
    )
    dd.save_to_disk(
        str(root / "datasets" / "stance"), num_shards=dict.fromkeys(dd, 1)
    )  # as build_dataset
    tagger = load_from_disk(str(models_root / "datasets" / "tagger"))
    tagger.save_to_disk(str(root / "datasets" / "tagger"))
    anchors = root / "anchors"
    anchors.mkdir()
    for name, labels_of in (("athene", lambda a: a), ("talos", lambda a: "unrelated")):
        write_submission(
            anchors / f"{name}_submission.csv",
            [(h, str(i), labels_of(a)) for i, (h, _, a) in enumerate(HEADLINES)],
        )
    return root / "datasets", anchors


EVAL_PARAMS = """
evaluate:
  batch_size: 4
  max_pairs: {max_pairs}
  max_documents: null
  sample_seed: 3
  anchors: [athene, talos]
  anchors_dir: {anchors}
  tfidf_max_features: 500
  tfidf_c: 1.0
  runtime: onnx
predict:
  tagger: models/tagger
  model: models/stance
  batch_size: 4
  articles_per_batch: 2
  sentence_gap: 1
  max_claims: 3
  same_paragraph: true
  context_chars: 600
  runtime: torch
"""


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> Path:
    from test_classify_predict import build_tiny_models

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    root = tmp_path_factory.getbasetemp() / "tiny_models"
    build_tiny_models(root)
    return root


def run_evaluate(tmp_path: Path, tiny_models: Path, max_pairs: str) -> tuple[Path, str]:
    import typer

    datasets, anchors = _tiny_eval_data(tmp_path, tiny_models)
    params = tmp_path / "params.yaml"
    params.write_text(EVAL_PARAMS.format(max_pairs=max_pairs, anchors=anchors), encoding="utf-8")
    out = tmp_path / "metrics"
    app = typer.Typer()
    app.command()(evaluate.command)
    buf, saved = io.StringIO(), log.handlers
    log.handlers = [
        logging.StreamHandler(buf)
    ]  # the stage logger otherwise keeps an earlier test's stderr
    try:
        result = CliRunner().invoke(
            app, [str(datasets), str(tiny_models / "models"), str(out), "--params", str(params)]
        )
    finally:
        log.handlers = saved
    output = result.output + buf.getvalue()
    assert result.exit_code == 0, f"{output}\n" + "".join(
        traceback.format_exception(result.exception)
    )
    return out, output


def test_evaluate_scores_every_system_on_the_same_pairs(tmp_path, tiny_models):
    out, output = run_evaluate(tmp_path, tiny_models, "null")
    stance = json.loads((out / "stance.json").read_text())
    spans = json.loads((out / "spans.json").read_text())

    fnc = stance["fnc1"]
    assert (fnc["n"], fnc["n_total"], fnc["limited"]) == (6, 6, False)
    assert set(fnc["systems"]) == {"model", "majority", "tfidf_lr", "rules", "athene", "talos"}
    # anchors: athene's file is the gold but for two rows; talos says unrelated everywhere
    gold = [s for _, s, _ in HEADLINES]
    athene = [fnc1.STANCE_MAP[a] for _, _, a in HEADLINES]
    from pipelines.core import scoring

    assert fnc["systems"]["athene"]["fnc_score"] == pytest.approx(
        scoring.fnc_relative_score(gold, athene)
    )
    assert fnc["systems"]["talos"]["related_macro_f1"] == 0.0
    assert fnc["systems"]["majority"]["accuracy"] == pytest.approx(
        sum(g == stance["train"]["majority"] for g in gold) / len(gold)
    )
    em = stance["emergent"]
    assert (em["n"], em["n_total"], em["n_duplicates"]) == (5, 7, 2)
    assert (
        em["labels"] == ["asserts", "denies", "unconfirmed"]
        and "fnc_score" not in em["systems"]["model"]
    )
    assert "annotations" not in stance  # empty split: skipped, not scored as zero
    assert stance["polnear"]["n"] == 4

    pol = spans["polnear"]
    assert pol["n"] == 4 and set(pol["gold_spans"]) == {"Source", "Claim"}
    assert set(pol["systems"]) == {"model", "rules"}
    for mode in ("exact", "overlap"):
        assert 0 <= pol["systems"]["model"][mode]["Claim"]["f1"] <= 1
    relations = pol["systems"]["model"]["relations"]
    assert set(relations) >= {"exact", "overlap", "exact_stance"}
    assert pol["gold_relations"] > 0

    for system in fnc["systems"]:
        with open(out / "plots" / "confusion" / f"fnc1__{system}.csv", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert [r["actual"] for r in rows] == gold
        assert (out / "plots" / "images" / f"fnc1__{system}.png").stat().st_size > 1000

    md = (out / "results.md").read_text()
    assert (
        "FNC-1 competition test" in md
        and "Athene (FNC-1 official rank 2nd, 81.97)" in md
        and "PolNeAR test" in md
    )
    assert f"{fnc['systems']['athene']['fnc_score']:.2f}" in md
    assert "[evaluate]" in output and "fnc1_pairs=6" in output

    readme = tmp_path / "README.md"
    readme.write_text(
        "# x\n<!-- results:start -->\nstale\n<!-- results:end -->\nafter\n", encoding="utf-8"
    )
    results_table.command(out, readme)
    text = readme.read_text()
    assert "stale" not in text and text.endswith("<!-- results:end -->\nafter\n")
    assert md in text


def test_evaluate_limit_is_recorded(tmp_path, tiny_models):
    out, _ = run_evaluate(tmp_path, tiny_models, "3")
    stance = json.loads((out / "stance.json").read_text())
    assert (stance["fnc1"]["n"], stance["fnc1"]["n_total"], stance["fnc1"]["limited"]) == (
        3,
        6,
        True,
    )
    assert "a seeded sample of 6" in (out / "results.md").read_text()


@pytest.mark.parametrize(
    "line, why",
    [
        ('{"id": "p2", "claim": "c", "context": "c"}', "no field 'stance'"),
        (
            '{"id": "p2", "claim": "c", "context": "c", "stance": "agrees"}',
            "'agrees' is not one of",
        ),
        ('{"id": "p2", "claim": "c",', "not valid JSON"),
    ],
    ids=["missing-field", "unknown-stance", "bad-json"],
)
def test_a_bad_challenge_line_names_the_file_and_line(tmp_path, line, why):
    from pipelines.learn.evaluate import ChallengeSetError, load_challenge_sets

    good = {"id": "p1", "claim": "c", "context": "c", "stance": "denies"}
    (tmp_path / "news_passages.jsonl").write_text(json.dumps(good) + "\n" + line + "\n")
    with pytest.raises(ChallengeSetError) as e:
        load_challenge_sets(tmp_path)
    assert "news_passages.jsonl:2: " in str(e.value) and why in str(e.value), e.value
    assert "dvc repro evaluate" in str(e.value)
