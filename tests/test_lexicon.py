"""The denial-cue lexicon: each documented decision (pipelines/core/lexicon.py docstring) pinned down."""

from __future__ import annotations

import pytest

from pipelines.core.lexicon import CUES, cue_stance, find_cues


@pytest.mark.parametrize(
    "text",
    ["denied", "deny", "has always denied", "rejected", "dismissed", "refuted", "disputed", "rebuts",
     "said it was not true", "isn’t true", "false", "called the report baseless", "DENIED!", "a flat denial",
     "ruled out", "scoffed at", "laughed off", "brushed aside", "hit back at", "poured cold water on",
     "no truth to", "was absolutely not the case", "nonsense", "pure fiction", "branded as lies",
     "rebuffed", "has repudiated", "quickly disavowed"],
)  # fmt: skip
def test_denies(text):
    assert cue_stance(text) == "denies"


@pytest.mark.parametrize(
    "text",
    ["could not confirm", "can't confirm", "can’t confirm", "cannot confirm", "declined to comment",
     "declined to confirm", "declined to immediately comment", "would not confirm", "no evidence",
     "unverified", "did not immediately confirm", "has not been confirmed", "would not say", "won't comment",
     "refused to say", "no comment", "was unable to verify", "we have no information",
     "had no information on that", "too early to say", "too soon to tell", "premature to conclude",
     "has yet to confirm", "stopped short of confirming", "did not respond to", "did not immediately reply",
     "looking into reports", "investigating whether", "it is unclear whether", "not yet clear if",
     "had no way to verify"],
)  # fmt: skip
def test_unconfirmed(text):
    assert cue_stance(text) == "unconfirmed"


@pytest.mark.parametrize(
    "text",
    ["said", "told", "confirmed", "according to", "announced", "", "   ", "it was true",
     "refused to release his tax returns", "declined", "falsely claimed", "wrongly asserts",
     "said it was wrong to cut taxes", "called the figures misleading", "inaccurate explanations of",
     "the fiction writer said", "the town lies on the coast"],
)  # fmt: skip
def test_asserts_by_default(text):
    assert cue_stance(text) == "asserts"


@pytest.mark.parametrize(
    "text",
    ["did not deny", "didn't deny", "has never disputed", "was not rejecting", "declined to deny",
     "could not confirm or deny", "neither confirmed nor denied", "could not rule out",
     "would not rule out", "refuses to disavow", "has never disavowed"],
)  # fmt: skip
def test_non_denials_commit_to_nothing(text):
    """Decision: a negated or refused denial is neither a denial nor a confirmation."""
    assert cue_stance(text) == "unconfirmed"


def test_case_and_punctuation_do_not_matter():
    assert cue_stance("Could Not Confirm.") == cue_stance("could not confirm") == "unconfirmed"
    assert cue_stance("“Denied,”") == "denies"


def test_words_are_matched_whole():
    assert (
        cue_stance("Denyse said")
        == cue_stance("falsetto")
        == cue_stance("rejectionist")
        == "asserts"
    )


def test_find_cues_gives_offsets_and_prefers_earlier_entries():
    text = "Ukraine said it could not confirm or deny that Russia had denied it."
    found = find_cues(text)
    assert [(text[c.start : c.end], c.stance) for c in found] == [
        ("could not confirm or deny", "unconfirmed"),
        ("denied", "denies"),
    ]
    assert find_cues("Nothing to see here.") == []


def test_table_is_documented():
    assert {c.stance for c in CUES} == {"denies", "unconfirmed"}
    assert len({c.name for c in CUES}) == len(CUES)
