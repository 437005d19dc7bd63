"""Inter-annotator agreement on the gold annotations, and adjudication into one gold set.

Who is compared: per document, every ``AnnotationSet`` with provenance ``gold`` except earlier
adjudications (annotator ``adjudicated:*``); model predictions and silver data never count.
Documents with fewer than two such annotators are counted but not compared.

Span agreement, per label and annotator pair, pooled over the documents both annotated, then
averaged over pairs (a pair where neither annotator used a label is left out of that label's
mean instead of counting as 0 or 1):

* ``exact``: same label, start and end, after trimming whitespace at the span edges (an
  annotator dragging the selection over a trailing space is not a disagreement).
* ``overlap``: the exact match relaxed: each span of one annotator is paired with at most one
  overlapping span of the other (same label; exact pairs first, then the largest overlap) and
  the pair earns the Dice overlap of their word/punctuation tokens (1 for an exact match), so
  F1 = 2 * credit / (spans of a + spans of b) is never below the exact F1. (It used to pool the
  tokens each annotator covered, which weighs a span by its length: one long span marked by one
  annotator only could push it under the exact F1 of the spans both marked alike.)

Stance agreement is measured on relations, not spans. A relation of one annotator and one of
another are "the same item" when their Source spans overlap and their Claim spans overlap (any
shared character, after trimming). Items are grouped into units across all annotators of a
document (greedy, largest overlap first, at most one relation per annotator per unit); Cohen's
kappa is computed per pair on the units both filled, Krippendorff's alpha (nominal) on all units.
Both are undefined -- reported as ``null`` -- when there is nothing to compare or when every
stance given is the same (no variation, so chance agreement is 1).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.core.document import (
    LABELS,
    STANCES,
    AnnotationSet,
    Document,
    Relation,
    Span,
    read_documents,
)
from pipelines.core.io import write_json
from pipelines.core.scoring import span_scores, tokens
from pipelines.core.stagelog import log, stage

ADJUDICATED_PREFIX = "adjudicated:"
RULES = ("majority", "reviewer")
TIE_STANCE = "unconfirmed"  # an undecided stance vote means the stance is not established
NOT_COMPUTED = "no document has two or more gold annotators"  # why agreement_computed is false


class AgreementError(ValueError):
    """Annotations that cannot be compared or adjudicated; the message names the document."""


# --- which annotations are compared ------------------------------------------------------------


def annotator_sets(doc: Document) -> dict[str, AnnotationSet]:
    """The human gold annotations of ``doc`` by annotator (earlier adjudications excluded)."""
    out: dict[str, AnnotationSet] = {}
    for ann in doc.annotations:
        if ann.provenance != "gold" or ann.annotator.startswith(ADJUDICATED_PREFIX):
            continue
        if ann.annotator in out:
            raise AgreementError(
                f"document {doc.article.id!r}: annotator {ann.annotator!r} has two gold annotations "
                f"({out[ann.annotator].origin} and {ann.origin}); keep one of them in Label Studio "
                "so that agreement compares people, not drafts"
            )
        out[ann.annotator] = ann
    return out


def trim(span: Span, text: str) -> Span:
    """``span`` without whitespace at its edges (kept whole if it is all whitespace)."""
    start, end = span.start, span.end
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start == end or (start, end) == (span.start, span.end):
        return span
    return Span(span.id, span.label, start, end, text[start:end], span.score)


def _trimmed(ann: AnnotationSet, text: str) -> dict[str, Span]:
    return {s.id: trim(s, text) for s in ann.spans}


def _overlap(a: Span, b: Span) -> int:
    return max(0, min(a.end, b.end) - max(a.start, b.start))


def _token_set(toks: Sequence[tuple[int, int]], span: Span) -> frozenset[int]:
    return frozenset(i for i, (s, e) in enumerate(toks) if s < span.end and e > span.start)


def overlap_credit(text: str, a: Sequence[Span], b: Sequence[Span]) -> float:
    """Summed Dice credit of a one-to-one matching of same-label overlapping spans of ``a`` and ``b``.

    Spans are compared by (label, start, end), duplicates counted once. Exact pairs are matched
    first (credit 1), so the credit is never below the number of exact matches.
    """
    toks = tokens(text)
    sa = {(s.label, s.start, s.end): s for s in a}
    sb = {(s.label, s.start, s.end): s for s in b}
    ta = {k: _token_set(toks, s) for k, s in sa.items()}
    tb = {k: _token_set(toks, s) for k, s in sb.items()}
    candidates = []
    for ka, x in sa.items():
        for kb, y in sb.items():
            if ka[0] != kb[0] or not _overlap(x, y):
                continue
            exact = ka == kb
            shared = len(ta[ka] & tb[kb])
            size = len(ta[ka]) + len(tb[kb])
            credit = 1.0 if exact else (2 * shared / size if size else 0.0)
            if credit:
                candidates.append((-credit, not exact, ka, kb))
    used_a: set[tuple[str, int, int]] = set()
    used_b: set[tuple[str, int, int]] = set()
    total = 0.0
    for neg_credit, _, ka, kb in sorted(candidates):
        if ka not in used_a and kb not in used_b:
            used_a.add(ka)
            used_b.add(kb)
            total -= neg_credit
    return total


def overlap_f1(
    docs: Sequence[tuple[str, Sequence[Span], Sequence[Span]]], label: str
) -> float | None:
    """Pooled overlap F1 of ``label`` over ``(text, spans a, spans b)``; None when neither has one."""
    credit, n_a, n_b = 0.0, 0, 0
    for text, a, b in docs:
        a = [s for s in a if s.label == label]
        b = [s for s in b if s.label == label]
        n_a += len({(s.start, s.end) for s in a})
        n_b += len({(s.start, s.end) for s in b})
        credit += overlap_credit(text, a, b)
    return 2 * credit / (n_a + n_b) if n_a + n_b else None


# --- stance units ------------------------------------------------------------------------------


def stance_units(doc: Document) -> list[dict[str, str]]:
    """Group the annotators' relations of ``doc`` into units: ``[{annotator: stance}, ...]``.

    Annotators are added in name order; each relation joins the unit (not yet holding that
    annotator) whose members' Source and Claim spans both overlap it most, else starts a unit.
    """
    text = doc.article.text
    units: list[dict[str, tuple[Span, Span, str]]] = []
    for name, ann in sorted(annotator_sets(doc).items()):
        spans = _trimmed(ann, text)
        rels = [(spans[r.source], spans[r.claim], r.stance) for r in ann.relations]
        candidates = []
        for i, (src, claim, _) in enumerate(rels):
            for j, unit in enumerate(units):
                if name in unit:
                    continue
                score = max(
                    (
                        _overlap(src, s) + _overlap(claim, c)
                        if _overlap(src, s) and _overlap(claim, c)
                        else 0
                    )
                    for s, c, _ in unit.values()
                )
                if score:
                    candidates.append((-score, i, j))
        used_rels: set[int] = set()
        used_units: set[int] = set()
        for _, i, j in sorted(candidates):
            if i not in used_rels and j not in used_units:
                units[j][name] = rels[i]
                used_rels.add(i)
                used_units.add(j)
        units.extend({name: rel} for i, rel in enumerate(rels) if i not in used_rels)
    return [{name: member[2] for name, member in unit.items()} for unit in units]


def _kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    if not a or len(set(a) | set(b)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(cohen_kappa_score(a, b, labels=list(STANCES)))
    return None if math.isnan(value) else value


def _alpha(units: Sequence[dict[str, str]], annotators: Sequence[str]) -> float | None:
    import krippendorff
    import numpy as np

    pairable = [u for u in units if len(u) >= 2]
    if not pairable or len({s for u in pairable for s in u.values()}) < 2:
        return None
    data = np.full((len(annotators), len(pairable)), np.nan)
    for j, unit in enumerate(pairable):
        for name, stance in unit.items():
            data[annotators.index(name), j] = STANCES.index(stance)
    value = float(
        krippendorff.alpha(
            reliability_data=data, level_of_measurement="nominal", value_domain=range(len(STANCES))
        )
    )
    return None if math.isnan(value) else value


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


# --- report ------------------------------------------------------------------------------------


def report(documents: Iterable[Document]) -> dict[str, Any]:
    """Agreement between the gold annotators of ``documents``: numbers only, the definitions are
    the module docstring's (text in a metrics file makes `dvc metrics show` unreadable)."""
    n_docs = 0
    by_size = Counter[str]()
    compared: list[tuple[Document, dict[str, AnnotationSet]]] = []
    for doc in documents:
        n_docs += 1
        sets = annotator_sets(doc)
        by_size["0" if not sets else "1" if len(sets) == 1 else "2+"] += 1
        if len(sets) >= 2:
            compared.append((doc, sets))
    annotators = sorted({name for _, sets in compared for name in sets})
    out: dict[str, Any] = {
        "documents": n_docs,
        "documents_compared": by_size["2+"],
        "documents_single_annotator": by_size["1"],
        "documents_without_gold": by_size["0"],
        "annotators": annotators,
        "agreement_computed": bool(compared),
        "spans": _span_agreement(compared, annotators),
        "stance": _stance_agreement(compared, annotators),
    }
    return out


def _span_agreement(
    compared: list[tuple[Document, dict[str, AnnotationSet]]], annotators: list[str]
) -> dict[str, Any]:
    pairs = []
    for a, b in itertools.combinations(annotators, 2):
        docs = [
            (
                doc.article.text,
                list(_trimmed(sets[a], doc.article.text).values()),
                list(_trimmed(sets[b], doc.article.text).values()),
            )
            for doc, sets in compared
            if a in sets and b in sets
        ]
        if not docs:
            continue
        scores = span_scores(docs, LABELS)
        entry: dict[str, Any] = {"annotators": [a, b], "documents": len(docs)}
        per_label = scores["exact"]["per_label"]
        # neither annotator used the label: F1 is undefined, not 0
        entry["exact"] = {
            label: per_label[label]["f1"]
            if per_label[label]["pred"] + per_label[label]["gold"]
            else None
            for label in LABELS
        }
        entry["overlap"] = {label: overlap_f1(docs, label) for label in LABELS}
        pairs.append(entry)
    counts = Counter(s.label for _, sets in compared for ann in sets.values() for s in ann.spans)
    return {
        **{
            mode: {label: _mean(p[mode][label] for p in pairs) for label in LABELS}
            for mode in ("exact", "overlap")
        },
        "spans": {label: counts[label] for label in LABELS},
        "pairs": pairs,
    }


def _stance_agreement(
    compared: list[tuple[Document, dict[str, AnnotationSet]]], annotators: list[str]
) -> dict[str, Any]:
    units = [u for doc, _ in compared for u in stance_units(doc)]
    pairs = []
    for a, b in itertools.combinations(annotators, 2):
        shared = [(u[a], u[b]) for u in units if a in u and b in u]
        if not shared:
            continue
        ya, yb = [x for x, _ in shared], [y for _, y in shared]
        pairs.append(
            {
                "annotators": [a, b],
                "relations": len(shared),
                "observed_agreement": sum(x == y for x, y in shared) / len(shared),
                "cohen_kappa": _kappa(ya, yb),
            }
        )
    return {
        "relations": sum(len(ann.relations) for _, sets in compared for ann in sets.values()),
        "units": len(units),
        "units_shared": sum(len(u) >= 2 for u in units),
        "observed_agreement": _mean(p["observed_agreement"] for p in pairs),
        "cohen_kappa": _mean(p["cohen_kappa"] for p in pairs),
        "krippendorff_alpha": _alpha(units, annotators),
        "pairs": pairs,
    }


# --- adjudication ------------------------------------------------------------------------------


def adjudicate(
    document: Document, rule: str = "majority", reviewer: str | None = None
) -> AnnotationSet:
    """One gold set for ``document`` from its annotators; the inputs are left untouched.

    ``majority``: a span is kept when more than half of the annotators have it (same label,
    start and end after trimming edge whitespace); a relation likewise (both ends matching).
    Its stance is the most frequent among the annotators who have it; a tie goes to
    ``reviewer``'s stance when the reviewer has the relation, otherwise to ``unconfirmed``.
    ``reviewer``: the reviewer's annotation is copied as is where the reviewer annotated the
    document; elsewhere the majority rule applies (``origin`` says which happened).
    """
    if rule not in RULES:
        raise AgreementError(f"adjudication rule {rule!r} not in {RULES}")
    if rule == "reviewer" and not reviewer:
        raise AgreementError("adjudication rule 'reviewer' needs the reviewer's annotator name")
    sets = annotator_sets(document)
    if not sets:
        raise AgreementError(f"document {document.article.id!r}: no gold annotation to adjudicate")
    inputs = ", ".join(f"{name} [{ann.origin}]" for name, ann in sorted(sets.items()))
    if rule == "reviewer" and reviewer in sets:
        chosen = sets[reviewer]
        spans, relations, how = chosen.spans, chosen.relations, f"reviewer {reviewer}"
    else:
        spans, relations = _majority(document, sets, reviewer)
        how = "majority" + (
            f" (reviewer {reviewer} did not annotate this document)" if rule == "reviewer" else ""
        )
    return AnnotationSet(
        annotator=ADJUDICATED_PREFIX + rule,
        provenance="gold",
        spans=spans,
        relations=relations,
        origin=f"adjudicated by {how} from: {inputs}",
    )


def _majority(
    doc: Document, sets: dict[str, AnnotationSet], reviewer: str | None
) -> tuple[tuple[Span, ...], tuple[Relation, ...]]:
    text = doc.article.text
    quorum = len(sets) / 2
    span_votes: Counter[tuple[str, int, int]] = Counter()
    rel_votes: dict[tuple[tuple[str, int, int], tuple[str, int, int]], dict[str, Relation]] = {}
    for name, ann in sets.items():
        spans = {sid: (s.label, s.start, s.end) for sid, s in _trimmed(ann, text).items()}
        span_votes.update(set(spans.values()))
        for rel in ann.relations:
            rel_votes.setdefault((spans[rel.source], spans[rel.claim]), {}).setdefault(name, rel)
    kept = sorted(
        (k for k, n in span_votes.items() if n > quorum), key=lambda k: (k[1], k[2], k[0])
    )
    ids = {k: f"adj-{k[0]}-{k[1]}-{k[2]}" for k in kept}
    spans = tuple(Span(ids[k], k[0], k[1], k[2], text[k[1] : k[2]]) for k in kept)
    relations = []
    for (src, claim), votes in sorted(rel_votes.items(), key=lambda kv: (kv[0][1][1], kv[0][0][1])):
        if len(votes) <= quorum:  # else both ends are kept too: every voter has both spans
            continue
        stance = _vote(
            [r.stance for r in votes.values()],
            votes[reviewer].stance if reviewer in votes else None,
        )
        cues = {r.cue for r in votes.values() if r.stance == stance}
        relations.append(
            Relation(ids[src], ids[claim], stance, cue=cues.pop() if len(cues) == 1 else None)
        )
    return spans, tuple(relations)


def _vote(stances: Sequence[str], reviewer_stance: str | None) -> str:
    counts = Counter(stances).most_common()
    top = [s for s, n in counts if n == counts[0][1]]
    if len(top) == 1:
        return top[0]
    return reviewer_stance if reviewer_stance is not None else TIE_STANCE


# --- CLI ---------------------------------------------------------------------------------------


def run(annotations: Path, out: Path | None) -> dict[str, Any]:
    """The agreement report of a ``studio pull`` export, as both the DVC stage and
    ``claimtrace studio agreement`` produce it: written to ``out`` (when given) and returned.

    No export yet is a warning and an empty report; a file that cannot be read or compared stops
    with an error naming it.
    """
    with stage("agreement") as counts:
        try:
            if annotations.exists():
                result = report(read_documents(annotations))
            else:
                log.warning(
                    "%s not found: no annotations pulled yet (run `claimtrace studio pull`)",
                    annotations,
                )
                result = report([])
        except ValueError as e:  # AgreementError, DocumentError, bad JSON: all name the culprit
            message = str(e)
            log.error(
                "%s",
                message if message.startswith(str(annotations)) else f"{annotations}: {message}",
            )
            raise typer.Exit(1) from e
        if out is not None:
            write_json(out, result, ensure_ascii=False, indent=2, sort_keys=True)
        counts["documents"] = result["documents"]
        counts["compared"] = result["documents_compared"]
        counts["annotators"] = len(result["annotators"])
        counts["units"] = result["stance"]["units"]
        if not result["agreement_computed"]:
            log.warning("%s: %s", annotations, NOT_COMPUTED)
    return result


def command(
    annotations: Annotated[
        Path, typer.Argument(help="Documents JSONL exported by `studio pull`.")
    ] = Path("data/annotations/export/annotations.jsonl"),
    out: Annotated[Path, typer.Argument(help="Agreement metrics JSON.")] = Path(
        "metrics/agreement.json"
    ),
) -> None:
    """Inter-annotator agreement (span F1, stance kappa/alpha) of the gold annotations."""
    run(annotations, out)


if __name__ == "__main__":
    typer.run(command)
