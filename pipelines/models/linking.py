"""From tagged spans to Source->Claim relations: which pairs to ask the stance model about, which
answers to keep, and where the Denial cue is.

Pure functions over the document model; the models run in :mod:`pipelines.use.predict`.

* **Candidates**: a Source and a Claim at most ``sentence_gap`` sentences apart, and only the
  ``max_claims`` Claims nearest each Source (its own sentence first, then by characters
  between them): a news sentence
  attributes one or two claims, and asking about every nearby pair is what made hundreds of
  relations out of an article with a dozen attributions. With ``same_paragraph``, no line
  break lies between them: 1.2% of PolNeAR's training relations cross one (none of its denials
  or non-confirmations), while a Source at a paragraph's end otherwise picks up the next
  paragraph's first Claim. Found with sorted offsets and bisection, so a long article costs
  time in proportion to its length.
* **Keeping**: a pair the stance model calls ``unrelated`` is dropped, and a Claim keeps only
  one Source (a claim is attributed to one source; the rare exceptions cost less than the pairs
  it removes): one that denies or withholds support through its own cue (:func:`denial_cue`
  finds the cue in their stretch) before any other, else the most likely. "Ukraine said it
  could not confirm that X, while Washington said Y": the model may rate Washington as related
  to X too, but only Ukraine's cue binds a source to X.
* **Denial cues**: a relation that denies or withholds support gets a Denial span on the
  lexicon cue (:func:`pipelines.core.lexicon.find_cues`) between its Source and its Claim, or
  right after the Source when the claim comes first ("..., the ministry denied"). The span
  tagger alone rarely learns Denial: PolNeAR marks ~200 of them.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from pipelines.core.document import Relation, Span
from pipelines.core.lexicon import ASSERTS, find_cues
from pipelines.core.text import sentence_starts

UNRELATED = "unrelated"
CUE_REACH = 60  # characters after a source searched for its cue when the claim comes first


@dataclass(frozen=True)
class Candidate:
    source: Span
    claim: Span


def _sentence_of(starts: Sequence[int], offset: int) -> int:
    return max(0, bisect.bisect_right(starts, offset) - 1)


def _gap(a: Span, b: Span) -> int:
    return max(0, max(a.start, b.start) - min(a.end, b.end))


def candidate_pairs(
    text: str,
    spans: Sequence[Span],
    sentence_gap: int,
    max_claims: int,
    same_paragraph: bool = False,
) -> list[Candidate]:
    """(Source, Claim) pairs worth classifying, in source order (see the module docstring)."""
    starts = sentence_starts(text)
    breaks = [i for i, ch in enumerate(text) if ch == "\n"] if same_paragraph else []

    def apart(a: Span, b: Span) -> bool:  # a line break between the two spans
        lo, hi = min(a.end, b.end), max(a.start, b.start)
        return lo < hi and bisect.bisect_left(breaks, hi) > bisect.bisect_left(breaks, lo)

    claims = sorted(
        (s for s in spans if s.label == "Claim" and s.text.strip()), key=lambda s: s.start
    )
    claim_sentence = [_sentence_of(starts, c.start) for c in claims]
    out = []
    for src in sorted(spans, key=lambda s: s.start):
        if src.label != "Source" or not src.text.strip():
            continue
        home = _sentence_of(starts, src.start)
        first = home - sentence_gap
        last = _sentence_of(starts, max(src.start, src.end - 1)) + sentence_gap
        # claims are sorted by start, so their sentences are too: one slice per source
        lo = bisect.bisect_left(claim_sentence, first)
        hi = bisect.bisect_right(claim_sentence, last)
        near = sorted(
            (k for k in range(lo, hi) if claims[k].id != src.id and not apart(src, claims[k])),
            key=lambda k: (abs(claim_sentence[k] - home), _gap(src, claims[k]), claims[k].start),
        )
        out.extend(Candidate(src, claims[k]) for k in near[:max_claims])
    return out


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    stance: str
    score: float  # the stance model's score of ``stance``
    related: float  # 1 - P(unrelated)


def keep_relations(text: str, scored: Sequence[Scored]) -> list[Relation]:
    """Drop ``unrelated`` pairs; each Claim keeps one Source: a denying or non-confirming one
    whose cue lies in their stretch first, else the most likely (module docstring)."""

    def rank(s: Scored) -> tuple[bool, float]:
        source, claim = s.candidate.source, s.candidate.claim
        cued = s.stance != ASSERTS and denial_cue(text, source, claim) is not None
        return cued, s.related

    best: dict[str, tuple[tuple[bool, float], Scored]] = {}
    for s in scored:
        if s.stance == UNRELATED:
            continue
        key, held = rank(s), best.get(s.candidate.claim.id)
        if held is None or key > held[0]:
            best[s.candidate.claim.id] = (key, s)
    kept = sorted(
        (s for _, s in best.values()),
        key=lambda s: (s.candidate.source.start, s.candidate.claim.start),
    )
    return [
        Relation(s.candidate.source.id, s.candidate.claim.id, s.stance, score=round(s.score, 6))
        for s in kept
    ]


def denial_cue(text: str, source: Span, claim: Span) -> tuple[int, int] | None:
    """Offsets of the denial / non-confirmation cue of a Source->Claim relation, or None."""
    if source.end <= claim.start:
        lo, hi = source.end, claim.start
    else:
        lo, hi = source.end, min(len(text), source.end + CUE_REACH)
    cues = [c for c in find_cues(text[lo:hi]) if c.stance != ASSERTS]
    if not cues and claim.end <= source.start:  # "..., denied the ministry"
        lo, hi = max(claim.end, source.start - CUE_REACH), source.start
        cues = [c for c in find_cues(text[lo:hi]) if c.stance != ASSERTS]
    if not cues:
        return None
    cue = cues[0]
    return lo + cue.start, lo + cue.end


def add_denials(
    text: str, spans: Sequence[Span], relations: Sequence[Relation], id_prefix: str = "d"
) -> list[Span]:
    """Denial spans for the relations that deny or withhold support, where the tagger did not
    already mark one overlapping the cue."""
    by_id = {s.id: s for s in spans}
    denials = [s for s in spans if s.label == "Denial"]
    out: list[Span] = []
    for rel in relations:
        if rel.stance == ASSERTS:
            continue
        at = denial_cue(text, by_id[rel.source], by_id[rel.claim])
        if at is None or any(d.start < at[1] and at[0] < d.end for d in (*denials, *out)):
            continue
        out.append(
            Span(
                id=f"{id_prefix}{len(out) + 1}",
                label="Denial",
                start=at[0],
                end=at[1],
                text=text[at[0] : at[1]],
                score=rel.score,
            )
        )
    return out
