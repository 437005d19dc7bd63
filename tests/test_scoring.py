"""Scoring functions on hand-made cases, and the published FNC-1 anchor figures reproduced."""

from __future__ import annotations

import pytest

from pipelines.core import scoring
from pipelines.core.document import PAIR_STANCES, STANCES, Span


def test_fnc_score_weights():
    gold = ["unrelated", "asserts", "denies", "unconfirmed"]
    # right unrelated: .25; exact related: 1.0; related but wrong label: .25; said unrelated: 0
    pred = ["unrelated", "asserts", "unconfirmed", "unrelated"]
    score, best = scoring.fnc_score(gold, pred)
    assert best == 0.25 + 3 * 1.0
    assert score == 0.25 + 1.0 + 0.25 + 0.0
    assert scoring.fnc_relative_score(gold, pred) == pytest.approx(100 * 1.5 / 3.25)
    assert scoring.fnc_relative_score(gold, gold) == 100.0


def test_fnc_score_related_called_unrelated_and_back():
    assert scoring.fnc_score(["unrelated"], ["asserts"]) == (0.0, 0.25)
    assert scoring.fnc_score(["asserts"], ["unrelated"]) == (0.0, 1.0)


def test_lengths_must_match():
    with pytest.raises(ValueError, match="row-aligned"):
        scoring.fnc_score(["asserts"], [])


def test_classification_metrics_fixed_labels():
    gold = ["asserts", "asserts", "denies", "unrelated"]
    pred = ["asserts", "denies", "denies", "unrelated"]
    m = scoring.classification_metrics(gold, pred, PAIR_STANCES)
    assert m["n"] == 4 and m["accuracy"] == 0.75
    assert m["per_class"]["asserts"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert m["per_class"]["denies"]["f1"] == pytest.approx(2 / 3)
    assert m["per_class"]["unconfirmed"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0 + 1) / 4)


def test_prediction_outside_label_set_counts_as_wrong():
    m = scoring.classification_metrics(["asserts", "denies"], ["unrelated", "denies"], STANCES)
    assert m["accuracy"] == 0.5
    assert m["per_class"]["asserts"]["recall"] == 0.0


def test_related_macro_f1_ignores_gold_unrelated_and_penalises_unrelated_predictions():
    gold = ["unrelated", "asserts", "denies", "unconfirmed"]
    assert scoring.related_macro_f1(gold, ["asserts", "asserts", "denies", "unconfirmed"]) == 1.0
    # unconfirmed pair predicted unrelated: recall 0 for that class
    assert scoring.related_macro_f1(
        gold, ["unrelated", "asserts", "denies", "unrelated"]
    ) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="no gold related"):
        scoring.related_macro_f1(["unrelated"], ["unrelated"])


def test_confusion_rows_are_gold():
    cm = scoring.confusion(["asserts", "denies"], ["denies", "denies"], ["asserts", "denies"])
    assert cm == [[0, 1], [0, 1]]


def test_majority_label_tie_break_is_stable():
    assert scoring.majority_label(["b", "a", "b", "a"]) == "a"
    assert scoring.majority_label(["unrelated", "asserts", "unrelated"]) == "unrelated"
    with pytest.raises(ValueError):
        scoring.majority_label([])


def _span(label, text, start, end):
    return Span(id=f"{label}{start}", label=label, start=start, end=end, text=text[start:end])


def test_span_scores_exact_and_overlap():
    text = "Officials said the bridge is safe , he added ."
    claim = text.index("the bridge is safe")
    gold = [_span("Source", text, 0, 9), _span("Claim", text, claim, claim + 18)]
    pred = [
        _span("Source", text, 0, 9),
        _span("Claim", text, claim + 4, claim + 20),
    ]  # "bridge is safe ,"
    s = scoring.span_scores([(text, gold, pred)], ["Claim", "Source", "Denial"])
    assert s["n_docs"] == 1
    assert s["exact"]["per_label"]["Source"]["f1"] == 1.0
    assert s["exact"]["per_label"]["Claim"]["f1"] == 0.0
    assert s["exact"]["micro"] == {
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "tp": 1,
        "pred": 2,
        "gold": 2,
    }
    overlap = s["overlap"]["per_label"]["Claim"]
    # gold tokens: the bridge is safe (4); predicted: bridge is safe , (4); shared 3
    assert (overlap["tp"], overlap["pred"], overlap["gold"]) == (3, 4, 4)
    assert overlap["f1"] == pytest.approx(0.75)
    # no Denial anywhere: F1 0, and it still counts in the macro average
    assert s["exact"]["per_label"]["Denial"]["f1"] == 0.0
    assert s["exact"]["macro_f1"] == pytest.approx(1 / 3)


def test_span_overlap_counts_partial_tokens_and_code_points():
    text = "Le ministre 🙂 a démenti."
    gold = [_span("Denial", text, 14, 23)]  # "a démenti"
    pred = [_span("Denial", text, 15, 20)]  # inside "a démenti": touches "démenti" only
    s = scoring.span_scores([(text, gold, pred)], ["Denial"])
    d = s["overlap"]["per_label"]["Denial"]
    assert (d["tp"], d["pred"], d["gold"]) == (1, 1, 2)


def test_span_scores_empty_predictions():
    text = "A said B."
    s = scoring.span_scores([(text, [_span("Source", text, 0, 1)], [])], ["Source"])
    assert s["exact"]["micro"]["precision"] == 0.0 and s["exact"]["micro"]["recall"] == 0.0


def _scored(label, start, end, score):
    return Span(
        id=f"p{start}", label=label, start=start, end=end, text="x" * (end - start), score=score
    )


@pytest.mark.parametrize(
    ("pred", "gold", "threshold"),
    [
        # low-scoring fragments that match nothing: the threshold rises above them
        ([(0, 5, 0.9), (10, 12, 0.4), (20, 22, 0.45)], [(0, 5)], 0.5),
        # every span right: keep all (ties go to the lowest threshold)
        ([(0, 5, 0.3), (10, 15, 0.9)], [(0, 5), (10, 15)], 0.0),
        # a right span scoring low is worth more than dropping one wrong span above it
        ([(0, 5, 0.2), (6, 8, 0.6), (10, 15, 0.8)], [(0, 5), (10, 15)], 0.0),
        # no prediction at all: nothing to tune
        ([], [(0, 5)], 0.0),
    ],
)
def test_span_score_thresholds_table(pred, gold, threshold):
    docs = [
        ([_span("Claim", "x" * 30, s, e) for s, e in gold], [_scored("Claim", *p) for p in pred])
    ]
    fitted = scoring.span_score_thresholds(docs, ["Claim"])
    assert fitted["Claim"]["threshold"] == threshold
    assert fitted["Claim"]["f1"] >= fitted["Claim"]["f1_unfiltered"]


def test_span_score_thresholds_are_per_label():
    gold = [_span("Source", "x" * 30, 0, 2), _span("Claim", "x" * 30, 3, 9)]
    pred = [
        _scored("Source", 0, 2, 0.95),
        _scored("Source", 20, 22, 0.7),  # wrong Source at 0.7
        _scored("Claim", 3, 9, 0.65),  # right Claim at 0.65
    ]
    fitted = scoring.span_score_thresholds([(gold, pred)], ["Source", "Claim"])
    assert fitted["Source"]["threshold"] == 0.75
    assert fitted["Claim"]["threshold"] == 0.0


# --- the published FNC-1 anchors ---------------------------------------------------------------


# Figures from fnc1/anchors/PROVENANCE.txt (measured on the full competition test set).
ANCHOR_FIGURES = {
    "athene": (82.68, 0.602, 0.480),
    "talos": (82.01, 0.576, 0.449),
    "uclmr": (82.13, 0.563, 0.437),
}


@pytest.mark.parametrize("system", sorted(ANCHOR_FIGURES))
def test_anchor_figures_reproduced(mirror, system):
    from pipelines.sources.corpora.fnc1 import FNC_LABELS, read_fnc_submission

    gold = [
        row.stance for row in read_fnc_submission(mirror / "fnc1" / "competition_test_stances.csv")
    ]
    pred = [
        row.stance
        for row in read_fnc_submission(mirror / "fnc1" / "anchors" / f"{system}_submission.csv")
    ]
    assert len(gold) == len(pred) == 25413
    fnc, macro, related = ANCHOR_FIGURES[system]
    assert scoring.fnc_relative_score(gold, pred) == pytest.approx(fnc, abs=0.005)
    assert scoring.classification_metrics(gold, pred, FNC_LABELS)["macro_f1"] == pytest.approx(
        macro, abs=0.005
    )
    three = FNC_LABELS[:3]
    assert scoring.related_macro_f1(gold, pred, three) == pytest.approx(related, abs=0.005)
