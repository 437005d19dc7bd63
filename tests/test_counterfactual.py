"""Counterfactual cue swaps (pipelines.learn.counterfactual): each rule of the module, and the
promise that generated examples never reach a test split."""

from __future__ import annotations

import pytest

from pipelines.core.lexicon import ASSERTS, cue_stance, find_cues
from pipelines.learn.counterfactual import (
    CUE_FORMS,
    REBUTTALS,
    SUBSTITUTES,
    can_rebut,
    rebut,
    swap_cue,
    swappable,
)


def spans(text: str, source: str, claim: str) -> tuple[tuple[int, int], tuple[int, int]]:
    s, c = text.index(source), text.index(claim)
    return (s, s + len(source)), (c, c + len(claim))


def test_every_substitute_reads_as_its_stance_in_the_lexicon():
    wrong = [
        (stance, phrase, cue_stance(phrase))
        for (stance, _), phrases in SUBSTITUTES.items()
        for phrase in phrases
        if cue_stance(phrase) != stance
    ]
    assert not wrong


def test_every_form_has_substitutes_for_both_stances():
    for form in set(CUE_FORMS.values()):
        assert SUBSTITUTES[("denies", form)] and SUBSTITUTES[("unconfirmed", form)]


@pytest.mark.parametrize(
    ("text", "source", "claim", "cue", "stance", "pick", "expected"),
    [
        ("The minister said that the plan had failed.", "The minister", "that the plan had failed",
         "said", "denies", 0, "The minister denied that the plan had failed."),
        ("The minister said that the plan had failed.", "The minister", "that the plan had failed",
         "said", "unconfirmed", 0, "The minister could not confirm that the plan had failed."),
        # a "whether" phrase drops the claim's opening "that"
        ("Police said that two men were held.", "Police", "that two men were held",
         "said", "unconfirmed", 14, "Police could not say whether two men were held."),
        # a colon before a quote goes: "denied: X" is not English
        ("The aide says: the deal is off.", "The aide", "the deal is off",
         "says", "denies", 0, "The aide denies the deal is off."),
        ("Officials say the road is closed.", "Officials", "the road is closed",
         "say", "unconfirmed", 0, "Officials cannot confirm the road is closed."),
        ("He left, saying the vote was rigged.", "He", "the vote was rigged",
         "saying", "denies", 0, "He left, denying the vote was rigged."),
    ],
)  # fmt: skip
def test_swap_table(text, source, claim, cue, stance, pick, expected):
    src, clm = spans(text, source, claim)
    swap = swap_cue(text, src, clm, cue, stance, pick)
    assert swap is not None
    assert swap.text == expected
    assert swap.text[swap.source[0] : swap.source[1]] == source  # the source does not move
    assert swap.text[swap.claim[0] : swap.claim[1]] in claim  # the claim moves, same words
    assert cue_stance(swap.text[swap.cue[0] : swap.cue[1]]) == stance


@pytest.mark.parametrize(
    ("text", "source", "claim", "cue"),
    [
        ("The plan had failed, the minister said.", "the minister", "The plan had failed", "said"),
        ("According to the minister, the plan failed.", "the minister", "the plan failed",
         "according to"),  # not a verb form the table knows
        ("The minister said\non Monday the plan failed.", "The minister", "the plan failed",
         "said"),  # the gap crosses a line break
        ("The minister, who had long been expected to step down after a scandal that shook the "
         "party last year, said the plan failed.", "The minister", "the plan failed", "said"),
        ("The minister said on Monday in a long statement to reporters the plan failed.",
         "The minister", "the plan failed", "said"),  # cue too far from the claim
    ],
)  # fmt: skip
def test_non_canonical_orders_are_left_alone(text, source, claim, cue):
    src, clm = spans(text, source, claim)
    assert not swappable(text, src, clm, cue)
    assert swap_cue(text, src, clm, cue, "denies", 0) is None


def test_the_choice_of_phrase_is_deterministic():
    text = "The minister said that the plan had failed."
    src, clm = spans(text, "The minister", "that the plan had failed")
    a = [swap_cue(text, src, clm, "said", "denies", k) for k in range(40)]
    assert a == [swap_cue(text, src, clm, "said", "denies", k) for k in range(40)]
    assert len({s.text for s in a if s}) == len(SUBSTITUTES[("denies", "past")])


def test_every_rebuttal_clause_reads_as_its_stance_after_the_name():
    """What follows the rebutting source is what ``predict`` reads as its cue (linking.denial_cue)."""
    for stance, templates in REBUTTALS.items():
        for template in templates:
            after = template.split("{source}")[1]
            cues = [c.stance for c in find_cues(after) if c.stance != ASSERTS]
            assert cues[:1] == [stance], template


@pytest.mark.parametrize(
    ("text", "source", "claim", "name", "stance", "pick", "expected"),
    [
        ("Kyiv said Russia had used the missiles. It was cold.", "Kyiv",
         "Russia had used the missiles", "Moscow", "denies", 0,
         "Kyiv said Russia had used the missiles, but Moscow denied it. It was cold."),
        # the clause goes before the sentence's period, after a short tail
        ("Kyiv said Russia had used the missiles on Tuesday.", "Kyiv",
         "Russia had used the missiles", "Moscow", "unconfirmed", 0,
         "Kyiv said Russia had used the missiles on Tuesday, while Moscow could not confirm it."),
        # an article opening the name is lower-cased mid-sentence
        ("Kyiv said that the dam was hit.", "Kyiv", "the dam was hit",
         "The Foreign Ministry", "denies", 2,
         "Kyiv said that the dam was hit, which the Foreign Ministry dismissed."),
        ("Kyiv said that the dam was hit at dawn.", "Kyiv", "the dam was hit",
         "Several observers", "denies", 0,
         "Kyiv said that the dam was hit at dawn, but several observers denied it."),
    ],
)  # fmt: skip
def test_rebut_table(text, source, claim, name, stance, pick, expected):
    src, clm = spans(text, source, claim)
    out = rebut(text, src, clm, name, stance, pick)
    assert out is not None and out.text == expected
    assert out.text[out.claim[0] : out.claim[1]] == claim  # the claim keeps its offsets
    assert out.text[out.source[0] : out.source[1]] == source
    assert out.text[out.rebutter[0] : out.rebutter[1]].lower() == name.lower()


@pytest.mark.parametrize(
    ("text", "source", "claim"),
    [
        ("Russia had used the missiles, Kyiv said.", "Kyiv", "Russia had used the missiles"),
        ("Kyiv said Russia had used the missiles; Moscow was silent.", "Kyiv",
         "Russia had used the missiles"),  # no period ends the claim's clause
        ("Kyiv said Russia had used the missiles\nMoscow.", "Kyiv", "Russia had used the missiles"),
        ("Kyiv said that \"Russia had used the missiles\" and more.", "Kyiv",
         "Russia had used the missiles"),  # a quote in the tail
        ("Kyiv said Russia had used the missiles in an attack that lasted well into the night.",
         "Kyiv", "Russia had used the missiles"),  # more than 40 characters to the period
        ("Kyiv said Russia had used the missiles against U.S. allies.", "Kyiv",
         "Russia had used the missiles"),  # "U.S." ends no sentence
        ("Kyiv weighed in on the deal.", "Kyiv", "the deal"),  # not a proposition
    ],
)  # fmt: skip
def test_rebut_leaves_other_shapes_alone(text, source, claim):
    src, clm = spans(text, source, claim)
    assert rebut(text, src, clm, "Moscow", "denies", 0) is None


@pytest.mark.parametrize(
    ("name", "ok"),
    [("Moscow", True), ("The Foreign Ministry", True), ("Kremlin spokesman Dmitry Peskov", True),
     ("He", False), ("They", False), ("officials", False), ("", False),
     ("A senior official who asked not to be named", False), ('"We', False),
     ("Sen. Ted Cruz", False)],
)  # fmt: skip
def test_who_can_rebut(name, ok):
    assert can_rebut(name) is ok
