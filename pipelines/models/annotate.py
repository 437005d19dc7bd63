"""Both models over whole articles: spans from the tagger, then Source->Claim relations.

The one path from text to annotations, shared by ``claimtrace predict``, the Label Studio
pre-annotations and ``evaluate`` (so the scores describe what users get): the texts of a batch
are tagged together, each Source is paired with its nearest Claims, all pairs of the batch are
classified at once, and :mod:`pipelines.models.linking` keeps the relations and adds the
Denial cues.

Heavy libraries are imported inside functions only (through :mod:`pipelines.models.inference`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.core.document import Relation, Span
from pipelines.core.params import ParamsError
from pipelines.core.text import relation_context
from pipelines.models.linking import (
    UNRELATED,
    Candidate,
    Scored,
    add_denials,
    candidate_pairs,
    keep_relations,
)
from pipelines.models.runtime import RUNTIMES


@dataclass(frozen=True)
class PredictParams:
    tagger: str
    model: str
    batch_size: int
    articles_per_batch: int
    sentence_gap: int
    max_claims: int
    same_paragraph: bool
    context_chars: int
    runtime: str  # what runs both models (pipelines.models.runtime)

    def validate(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ParamsError(f"predict.runtime must be one of {', '.join(RUNTIMES)}")
        if (
            min(self.batch_size, self.articles_per_batch, self.max_claims) < 1
            or self.sentence_gap < 0
            or self.context_chars < 100
        ):
            raise ParamsError(
                "predict: batch_size, articles_per_batch and max_claims must be >= 1, "
                "sentence_gap >= 0, context_chars >= 100"
            )


@dataclass(frozen=True)
class LinkParams:
    sentence_gap: int  # pair a Source with Claims at most this many sentences away
    max_claims: int  # ... the nearest this many of them
    batch_size: int  # model batch size (tagger windows, stance pairs)
    same_paragraph: bool  # ... and no line break between them


@dataclass(frozen=True)
class StanceInput:
    """A candidate (Source, Claim) pair in the form ``classify_pairs`` takes."""

    claim: str
    context: str
    source: str


def stance_input(text: str, cand: Candidate, context_chars: int) -> StanceInput:
    src, clm = cand.source, cand.claim
    context = relation_context(text, (src.start, src.end), (clm.start, clm.end), context_chars)
    return StanceInput(clm.text.strip(), context, src.text.strip())


def link(
    text: str,
    spans: list[Span],
    candidates: Sequence[Candidate],
    labels: Sequence[tuple[str, dict[str, float]]],
) -> tuple[list[Span], list[Relation]]:
    """The relations kept from the classified candidates, and the spans with Denial cues added."""
    scored = [
        Scored(cand, label, scores[label], 1.0 - scores.get(UNRELATED, 0.0))
        for cand, (label, scores) in zip(candidates, labels, strict=True)
    ]
    relations = keep_relations(text, scored)
    return spans + add_denials(text, spans, relations), relations


def annotate_texts(
    tagger: Any,
    stance: Any,
    texts: Sequence[str],
    p: LinkParams,
    progress: Callable[[str, int], None] | None = None,
    spans: Sequence[list[Span]] | None = None,
) -> list[tuple[list[Span], list[Relation]]]:
    """Spans and relations of each text (code-point offsets), in input order. ``progress``
    is called as ``progress("windows", n)`` while tagging and ``progress("pairs", n)`` while
    classifying (the two phases of a long article). ``spans``: the texts' tagger spans when
    already decoded (to compare decoding choices); the tagger then does not run."""
    from pipelines.models.inference import classify_pairs, tag_texts

    def phase(name: str) -> Callable[[int], None] | None:
        return None if progress is None else lambda n: progress(name, n)

    if spans is None:
        spans = tag_texts(tagger, texts, p.batch_size, progress=phase("windows"))
    candidates = [
        candidate_pairs(text, s, p.sentence_gap, p.max_claims, p.same_paragraph)
        for text, s in zip(texts, spans, strict=True)
    ]
    inputs = [
        stance_input(text, c, stance.context_chars)
        for text, cands in zip(texts, candidates, strict=True)
        for c in cands
    ]
    labels = iter(classify_pairs(stance, inputs, p.batch_size, phase("pairs")) if inputs else [])
    return [
        link(text, s, cands, [next(labels) for _ in cands])
        for text, s, cands in zip(texts, spans, candidates, strict=True)
    ]
