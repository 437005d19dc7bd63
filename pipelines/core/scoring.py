"""Pure scoring functions: stance (FNC-1 score, macro-F1, related-only 3-way) and span P/R/F1.

Label-agnostic where possible (FNC-1's ``agree/disagree/discuss`` or the project's
``asserts/denies/unconfirmed``), so the published FNC-1 figures can be reproduced from the raw
submission files with the same code that scores the project's model. scikit-learn does the
counting; these wrappers fix the label sets so that every system is scored on the same classes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from pipelines.core.document import PAIR_STANCES, STANCES

UNRELATED = "unrelated"
TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def fnc_score(
    gold: Sequence[str], pred: Sequence[str], unrelated: str = UNRELATED
) -> tuple[float, float]:
    """The official FNC-1 weighted score and its maximum (the score of the gold labels).

    +0.25 for the right related/unrelated decision, +0.75 more for the exact label of a related
    pair (as ``score_submission`` in the FakeNewsChallenge/fnc-1 baseline scorer).
    """
    _same_length(gold, pred)

    def one(g: str, p: str) -> float:
        score = 0.0
        if g == p:
            score += 0.25
            if g != unrelated:
                score += 0.50
        if g != unrelated and p != unrelated:
            score += 0.25
        return score

    return sum(one(g, p) for g, p in zip(gold, pred, strict=True)), sum(one(g, g) for g in gold)


def fnc_relative_score(
    gold: Sequence[str], pred: Sequence[str], unrelated: str = UNRELATED
) -> float:
    """FNC-1 score in percent of the gold labels' score (what the leaderboard reports)."""
    score, best = fnc_score(gold, pred, unrelated)
    return 100.0 * score / best if best else 0.0


def classification_metrics(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1 over ``labels`` and per-class precision/recall/F1/support.

    A prediction outside ``labels`` (e.g. ``unrelated`` on a 3-way set) simply counts as wrong.
    """
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    _same_length(gold, pred)
    if not gold:
        raise ValueError("nothing to score: no gold labels")
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=list(labels), zero_division=0)
    return {
        "n": len(gold),
        "accuracy": float(accuracy_score(gold, pred)),
        "macro_f1": float(sum(f) / len(labels)),
        "per_class": {
            label: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(s[i]),
            }
            for i, label in enumerate(labels)
        },
    }


def related_macro_f1(
    gold: Sequence[str],
    pred: Sequence[str],
    labels: Sequence[str] = STANCES,
    unrelated: str = UNRELATED,
) -> float:
    """Macro-F1 over the related classes on gold-related pairs only (FNC-1 3-way view).

    A related pair predicted ``unrelated`` lowers recall, as in the published 3-way figures.
    """
    from sklearn.metrics import f1_score

    _same_length(gold, pred)
    kept = [(g, p) for g, p in zip(gold, pred, strict=True) if g != unrelated]
    if not kept:
        raise ValueError("nothing to score: no gold related pairs")
    g3, p3 = zip(*kept, strict=True)
    return float(f1_score(g3, p3, labels=list(labels), average="macro", zero_division=0))


def confusion(
    gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] = PAIR_STANCES
) -> list[list[int]]:
    """Confusion matrix, rows = gold, columns = predicted, in ``labels`` order."""
    from sklearn.metrics import confusion_matrix

    _same_length(gold, pred)
    return confusion_matrix(gold, pred, labels=list(labels)).tolist()


def majority_label(labels: Iterable[str]) -> str:
    """Most frequent training label (ties broken by name, so the choice is reproducible)."""
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    if not counts:
        raise ValueError("no training labels to fit the majority baseline on")
    return min(counts, key=lambda k: (-counts[k], k))


# --- spans -------------------------------------------------------------------------------------


class SpanLike(Protocol):
    label: str
    start: int
    end: int


def _prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float | int]:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": tp,
        "pred": n_pred,
        "gold": n_gold,
    }


def tokens(text: str) -> list[tuple[int, int]]:
    """Word and punctuation token offsets (code points): the unit of the overlap score."""
    return [m.span() for m in TOKEN_RE.finditer(text)]


def _covered(toks: Sequence[tuple[int, int]], spans: Iterable[SpanLike], label: str) -> set[int]:
    out: set[int] = set()
    for span in spans:
        if span.label == label:
            out.update(i for i, (s, e) in enumerate(toks) if s < span.end and e > span.start)
    return out


def span_scores(
    docs: Iterable[tuple[str, Sequence[SpanLike], Sequence[SpanLike]]], labels: Sequence[str]
) -> dict[str, Any]:
    """Span P/R/F1 per label, micro over labels and macro-F1, in two modes.

    ``docs`` yields ``(text, gold spans, predicted spans)``. ``exact``: a predicted span counts
    only if a gold span has the same label, start and end. ``overlap``: token level -- each
    token of the text covered by a span of the label counts once, so partial matches get
    partial credit (attribution boundaries are notoriously fuzzy between annotators).
    """
    counts = {mode: {label: [0, 0, 0] for label in labels} for mode in ("exact", "overlap")}
    n_docs = 0
    for text, gold, pred in docs:
        n_docs += 1
        toks = tokens(text)
        for label in labels:
            g = {(s.start, s.end) for s in gold if s.label == label}
            p = {(s.start, s.end) for s in pred if s.label == label}
            _add(counts["exact"][label], len(g & p), len(p), len(g))
            gt, pt = _covered(toks, gold, label), _covered(toks, pred, label)
            _add(counts["overlap"][label], len(gt & pt), len(pt), len(gt))
    out: dict[str, Any] = {"n_docs": n_docs}
    for mode, per_label in counts.items():
        scores = {label: _prf(*c) for label, c in per_label.items()}
        total = [sum(c[i] for c in per_label.values()) for i in range(3)]
        out[mode] = {
            "per_label": scores,
            "micro": _prf(*total),
            "macro_f1": sum(s["f1"] for s in scores.values()) / len(labels) if labels else 0.0,
        }
    return out


class ScoredSpanLike(SpanLike, Protocol):
    score: float | None


THRESHOLD_GRID: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(20))  # 0 .. 0.95


def span_score_thresholds(
    docs: Iterable[tuple[Sequence[SpanLike], Sequence[ScoredSpanLike]]],
    labels: Sequence[str],
    grid: Sequence[float] = THRESHOLD_GRID,
) -> dict[str, dict[str, float]]:
    """Per label, the lowest predicted-span score to keep that maximises exact-match F1.

    ``docs`` yields ``(gold spans, predicted spans with scores)``; fit on a validation split,
    never on a test split. A one-epoch tagger emits many low-scoring fragments ("the", "to")
    that match no gold span, so precision is the cheap part to win. Ties go to the lower
    threshold (more recall). Returns ``{label: {"threshold", "f1", "f1_unfiltered"}}``.
    """
    scored: dict[str, list[tuple[float, bool]]] = {label: [] for label in labels}
    n_gold = dict.fromkeys(labels, 0)
    for gold, pred in docs:
        for label in labels:
            g = {(s.start, s.end) for s in gold if s.label == label}
            n_gold[label] += len(g)
            scored[label].extend(
                (1.0 if s.score is None else s.score, (s.start, s.end) in g)
                for s in pred
                if s.label == label
            )
    out = {}
    for label in labels:
        rows = scored[label]

        def f1(t: float, rows: list[tuple[float, bool]] = rows, label: str = label) -> float:
            kept = [hit for score, hit in rows if score >= t]
            return float(_prf(sum(kept), len(kept), n_gold[label])["f1"])

        best = max(grid, key=lambda t: (f1(t), -t))
        out[label] = {
            "threshold": float(best),
            "f1": round(f1(best), 4),
            "f1_unfiltered": round(f1(0.0), 4),
        }
    return out


def _add(acc: list[int], tp: int, n_pred: int, n_gold: int) -> None:
    acc[0] += tp
    acc[1] += n_pred
    acc[2] += n_gold


def _same_length(gold: Sequence[Any], pred: Sequence[Any]) -> None:
    if len(gold) != len(pred):
        raise ValueError(
            f"{len(gold)} gold labels but {len(pred)} predictions: they must be row-aligned"
        )


# --- relations ---------------------------------------------------------------------------------


class RelationLike(Protocol):
    source: str
    claim: str
    stance: str


def _same(a: SpanLike, b: SpanLike, mode: str) -> bool:
    if mode == "exact":
        return (a.start, a.end) == (b.start, b.end)
    return a.start < b.end and b.start < a.end


def relation_scores(
    docs: Iterable[
        tuple[
            Sequence[SpanLike], Sequence[RelationLike], Sequence[SpanLike], Sequence[RelationLike]
        ]
    ],
) -> dict[str, Any]:
    """End-to-end Source->Claim relation P/R/F1: a predicted relation is right when its Source
    and its Claim both match a gold relation's (``exact``: same offsets; ``overlap``: sharing a
    character), each gold relation matched at most once; ``*_stance`` modes also need the
    stance to agree. ``docs`` yields ``(gold spans, gold relations, predicted spans, predicted
    relations)``; relations name spans by id."""
    modes = ("exact", "overlap", "exact_stance", "overlap_stance")
    counts = {mode: [0, 0, 0] for mode in modes}
    for gold_spans, gold_rels, pred_spans, pred_rels in docs:
        g_by, p_by = {s.id: s for s in gold_spans}, {s.id: s for s in pred_spans}  # type: ignore[attr-defined]
        for mode in modes:
            match = mode.split("_")[0]
            free = list(gold_rels)
            tp = 0
            for r in pred_rels:
                hit = next(
                    (
                        g
                        for g in free
                        if _same(p_by[r.source], g_by[g.source], match)
                        and _same(p_by[r.claim], g_by[g.claim], match)
                        and (not mode.endswith("stance") or r.stance == g.stance)
                    ),
                    None,
                )
                if hit is not None:
                    free.remove(hit)
                    tp += 1
            _add(counts[mode], tp, len(pred_rels), len(gold_rels))
    return {mode: _prf(*c) for mode, c in counts.items()}
