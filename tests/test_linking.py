"""Linking (pipelines.models.linking): candidates, keeping relations, Denial cues; and the
end-to-end relation score (pipelines.core.scoring.relation_scores)."""

from __future__ import annotations

import pytest

from pipelines.core.document import Relation, Span
from pipelines.core.scoring import relation_scores
from pipelines.models.linking import Candidate, Scored, add_denials, candidate_pairs, keep_relations


def span(text: str, label: str, words: str, sid: str, nth: int = 0) -> Span:
    at = -1
    for _ in range(nth + 1):
        at = text.index(words, at + 1)
    return Span(id=sid, label=label, start=at, end=at + len(words), text=words)


TEXT = (
    "Ukraine said it could not confirm that Russia had used the missiles. "
    "The White House said Russia was using North Korean weapons. "
    "Residents were urged to tape their windows.\n\n"
    "Kirby said the pipeline of support will soon run dry."
)


@pytest.fixture
def spans():
    return [
        span(TEXT, "Source", "Ukraine", "s1"),
        span(TEXT, "Claim", "Russia had used the missiles", "c1"),
        span(TEXT, "Source", "The White House", "s2"),
        span(TEXT, "Claim", "Russia was using North Korean weapons", "c2"),
        span(TEXT, "Source", "Kirby", "s3"),
        span(TEXT, "Claim", "the pipeline of support will soon run dry", "c3"),
    ]


def test_candidates_are_near_and_few(spans):
    pairs = {(c.source.id, c.claim.id) for c in candidate_pairs(TEXT, spans, 1, 3)}
    assert ("s1", "c1") in pairs and ("s2", "c2") in pairs and ("s3", "c3") in pairs
    assert ("s1", "c3") not in pairs  # three sentences apart
    nearest = candidate_pairs(TEXT, spans, 5, 1)
    assert [(c.source.id, c.claim.id) for c in nearest] == [
        ("s1", "c1"),
        ("s2", "c2"),
        ("s3", "c3"),
    ]


@pytest.mark.parametrize(
    ("text", "linked"),
    [
        ("The mayor said.\n\nTaxes will rise next year.", False),  # a paragraph break between
        ("The mayor said.\nTaxes will rise next year.", False),  # a line break
        ("The mayor said taxes will rise next year.", True),
        ("Taxes will rise next year, the mayor said.", True),  # the claim first
    ],
)  # fmt: skip
def test_no_candidate_across_a_line_break(text, linked):
    spans = [
        span(text, "Source", "The mayor" if "The mayor" in text else "the mayor", "s1"),
        span(text, "Claim", "axes will rise next year", "c1"),
    ]
    pairs = candidate_pairs(text, spans, 1, 3, same_paragraph=True)
    assert bool(pairs) is linked
    assert candidate_pairs(text, spans, 1, 3, same_paragraph=False)  # the old rule pairs all


def test_candidates_scale_with_length():
    sentence = "Officials said the road is closed. "
    text = sentence * 3000
    spans = []
    for i in range(3000):
        base = i * len(sentence)
        spans += [
            Span(f"s{i}", "Source", base, base + 9, "Officials"),
            Span(f"c{i}", "Claim", base + 15, base + 33, text[base + 15 : base + 33]),
        ]
    pairs = candidate_pairs(text, spans, 1, 3)
    assert len(pairs) == 3 * 3000 - 2  # 3 nearest per source (fewer at the very end)


def scored(spans, sid, cid, stance, related, score=0.9):
    by = {s.id: s for s in spans}
    return Scored(Candidate(by[sid], by[cid]), stance, score, related)


def test_keep_drops_unrelated_and_gives_each_claim_one_source(spans):
    kept = keep_relations(
        TEXT,
        [
            scored(spans, "s1", "c1", "unconfirmed", 0.9),
            scored(spans, "s2", "c1", "asserts", 0.6),  # a weaker source for the same claim
            scored(spans, "s2", "c2", "asserts", 0.95),
            scored(spans, "s3", "c2", "unrelated", 0.1),
        ],
    )
    assert [(r.source, r.claim, r.stance) for r in kept] == [
        ("s1", "c1", "unconfirmed"),
        ("s2", "c2", "asserts"),
    ]


@pytest.mark.parametrize(
    ("text", "rated", "kept"),
    [
        # the seed's case: a later source rated more related, but only Ukraine's cue binds it
        ("Ukraine said it could not confirm that Russia had used them, while Washington said so.",
         [("Ukraine", "unconfirmed", 0.7), ("Washington", "asserts", 0.9)], "Ukraine"),
        # a rebuttal after the claim: the denier's cue follows its name
        ("Kyiv said Russia had used them, but Moscow denied it.",
         [("Kyiv", "asserts", 0.9), ("Moscow", "denies", 0.8)], "Moscow"),
        # a denial the model reads without a cue of its own in the stretch: relatedness decides
        ("Kyiv said Russia had used them, and Moscow was furious.",
         [("Kyiv", "asserts", 0.9), ("Moscow", "denies", 0.8)], "Kyiv"),
        # two cued sources: the more related one
        ("Kyiv could not confirm that Russia had used them, and Moscow denied it.",
         [("Kyiv", "unconfirmed", 0.7), ("Moscow", "denies", 0.8)], "Moscow"),
    ],
)  # fmt: skip
def test_a_source_bound_by_its_own_denial_cue_keeps_the_claim(text, rated, kept):
    claim = span(text, "Claim", "Russia had used them", "c")
    pairs = [
        scored([span(text, "Source", name, name), claim], name, "c", stance, related)
        for name, stance, related in rated
    ]
    (relation,) = keep_relations(text, pairs)
    assert relation.source == kept


@pytest.mark.parametrize(
    ("text", "source", "claim", "cue"),
    [
        ("Ukraine said it could not confirm that Russia had used them.", "Ukraine",
         "Russia had used them", "could not confirm"),
        ("The ministry flatly denied the report.", "The ministry", "the report", "denied"),
        ("Russia had used them, the ministry denied.", "the ministry", "Russia had used them",
         "denied"),  # the cue after the source, the claim first
        ("Tape your windows, officials neither confirmed nor denied.", "officials",
         "Tape your windows", "neither confirmed nor denied"),  # a phrase
    ],
)  # fmt: skip
def test_denial_cue_is_found_between_or_after(text, source, claim, cue):
    spans = [span(text, "Source", source, "s"), span(text, "Claim", claim, "c")]
    (denial,) = add_denials(text, spans, [Relation("s", "c", "denies")])
    assert (denial.label, denial.text) == ("Denial", cue)
    assert text[denial.start : denial.end] == denial.text


def test_no_denial_for_asserting_relations_or_an_existing_one(spans):
    assert add_denials(TEXT, spans, [Relation("s2", "c2", "asserts")]) == []
    cue = span(TEXT, "Denial", "could not confirm", "d0")
    assert add_denials(TEXT, [*spans, cue], [Relation("s1", "c1", "unconfirmed")]) == []


def test_relation_scores_exact_overlap_and_stance():
    g = [Span("gs", "Source", 0, 7, ""), Span("gc", "Claim", 20, 40, "")]
    p = [Span("ps", "Source", 0, 7, ""), Span("pc", "Claim", 22, 40, "")]  # claim edge differs
    gold = [Relation("gs", "gc", "denies")]
    pred = [Relation("ps", "pc", "asserts"), Relation("ps", "pc", "denies")]  # a duplicate
    scores = relation_scores([(g, gold, p, pred)])
    assert scores["exact"]["tp"] == 0
    assert scores["overlap"]["tp"] == 1 and scores["overlap"]["precision"] == 0.5
    assert scores["overlap_stance"]["tp"] == 1  # the second prediction has the right stance
    assert scores["exact_stance"]["recall"] == 0.0
