"""Denial-cue lexicon: which attribution cues deny a claim or decline to confirm it.

One table (``CUES``) of case-insensitive regexes -> stance, shared by the PolNeAR importer (is a
gold cue a denial?), the rule-based annotator (where is the Denial span?) and the pair baseline.

Decisions (each has a test in tests/test_lexicon.py):

* ``unconfirmed`` is checked before ``denies``: "could not confirm or deny", "declined to deny"
  and "neither confirmed nor denied" commit to nothing, so they are ``unconfirmed``.
* A negated denial verb ("did not deny", "has never disputed", "wasn't rejecting") is
  ``unconfirmed``, not ``asserts``: the source did not deny, but did not confirm either.
* "refused"/"declined" alone are not cues: "refused to release his tax returns" refuses an
  action, not a claim. Only "declined/refused to comment/confirm/say/..." count.
* "falsely"/"wrongly" (the *author* judging the claim) are not denials by the source:
  "falsely claimed" is still the source asserting.
* Wire copy's stock phrases for the same two moves count too: "too early to say whether", "has
  yet to confirm", "stopped short of confirming", "did not respond to requests for comment",
  "was looking into reports that" (``unconfirmed``); "ruled out", "scoffed at", "laughed off",
  "no truth to", "not the case", "nonsense", "a fabrication" (``denies``). "Could not rule out" is
  ``unconfirmed``, like a negated denial. "Wrong" and "misleading" are not cues: "said it was
  wrong to cut taxes" argues, it does not deny.
* Anything else (said, told, confirmed, according to, ...) is ``asserts``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ASSERTS, DENIES, UNCONFIRMED = "asserts", "denies", "unconfirmed"

_NEG = r"(?:\w*n[’']t|cannot|not|never|no\s+longer)"
_NEGATED = (
    r"\b(?:(?:could|can|would|will|did|does|do|has|have|had|was|were|is|are|may|might)\s+)?" + _NEG
)
_DENY_VERB = (
    r"(?:den(?:y|ies|ied|ying|ial)|reject(?:s|ed|ing)?|dismiss(?:es|ed|ing)?|refut(?:e|es|ed|ing)"
    r"|disput(?:e|es|ed|ing)|rebut(?:s|ted|ting)?|debunk(?:s|ed|ing)?|contradict(?:s|ed|ing)?"
    r"|rebuff(?:s|ed|ing)?|repudiat(?:e|es|ed|ing)|disavow(?:s|ed|ing|al)?)"
)
_CONFIRM_VERB = r"(?:confirm(?:ed|ing|s)?|verif(?:y|ied|ies|ying)|corroborat(?:e|ed|es|ing)|substantiat(?:e|ed))"
_SAY_VERB = (
    r"(?:comment(?:ed|ing)?|confirm|say|discuss|elaborate|verify|respond|answer|deny|speculate)"
)
_ONE_WORD = r"\s+(?:\w+\s+)?"  # "did not *immediately* confirm", "has not *been* confirmed"


@dataclass(frozen=True)
class Cue:
    """One lexicon entry: ``pattern`` (regex, matched case-insensitively) signals ``stance``."""

    name: str
    pattern: str
    stance: str


#: Checked in order; the first entry that matches decides (see the module docstring).
CUES: tuple[Cue, ...] = (
    Cue(
        "neither-nor",
        r"\bneither\s+" + _CONFIRM_VERB + r"\s+nor\s+" + _DENY_VERB + r"\b",
        UNCONFIRMED,
    ),
    Cue(
        "confirm-or-deny",
        _NEGATED + _ONE_WORD + _CONFIRM_VERB + r"\s+or\s+" + _DENY_VERB + r"\b",
        UNCONFIRMED,
    ),
    Cue(
        "declined-to",
        r"\b(?:declin|refus)(?:e|es|ed|ing|al)\s+to"
        + _ONE_WORD
        + f"(?:{_SAY_VERB}|{_DENY_VERB})"
        + r"\b",
        UNCONFIRMED,
    ),
    Cue("not-confirm", _NEGATED + _ONE_WORD + _CONFIRM_VERB + r"\b", UNCONFIRMED),
    Cue(
        "unable-to-confirm",
        r"\b(?:unable|failed)\s+to" + _ONE_WORD + _CONFIRM_VERB + r"\b",
        UNCONFIRMED,
    ),
    Cue("negated-denial", _NEGATED + _ONE_WORD + _DENY_VERB + r"\b", UNCONFIRMED),
    Cue("not-rule-out", _NEGATED + _ONE_WORD + r"rul(?:e|ing)\s+out\b", UNCONFIRMED),
    Cue(
        "too-early",
        r"\b(?:too\s+(?:early|soon)|premature)\s+to"
        + _ONE_WORD
        + r"(?:say|tell|conclude|determine|confirm|know|judge|speculate|comment)\b",
        UNCONFIRMED,
    ),
    Cue(
        "yet-to",
        r"\byet\s+to" + _ONE_WORD + r"(?:confirm|verify|establish|determine|corroborate|comment)\b",
        UNCONFIRMED,
    ),
    Cue(
        "stopped-short",
        r"\bstop(?:s|ped|ping)?\s+short\s+of\s+(?:confirming|saying|verifying|endorsing)\b",
        UNCONFIRMED,
    ),
    Cue(
        "no-reply",
        _NEGATED + _ONE_WORD + r"(?:respond|reply|answer|return\s+(?:calls|messages|requests))\b",
        UNCONFIRMED,
    ),
    Cue(
        "looking-into",
        r"\b(?:investigat(?:e|es|ed|ing)|look(?:s|ed|ing)?\s+into|examin(?:e|es|ed|ing)"
        r"|check(?:s|ed|ing)?)\s+(?:whether|if|reports|claims|allegations)\b",
        UNCONFIRMED,
    ),
    Cue("no-way-to-verify", r"\bno\s+way\s+(?:to|of)" + _ONE_WORD + _CONFIRM_VERB, UNCONFIRMED),
    Cue(
        "unclear-whether",
        r"\b(?:unclear|(?:not|n[’']t)\s+(?:yet\s+)?clear)\s+(?:whether|if)\b",
        UNCONFIRMED,
    ),
    Cue(
        "would-not-say",
        _NEGATED + r"\s+(?:say|comment|discuss|elaborate)\b",
        UNCONFIRMED,
    ),
    Cue("no-comment", r"\bno\s+comment\b", UNCONFIRMED),
    Cue(
        "no-evidence",
        r"\bno\s+(?:\w+\s+)?(?:evidence|proof|indication|confirmation|information)\b",
        UNCONFIRMED,
    ),
    Cue("unverified", r"\b(?:unverified|unconfirmed|unsubstantiated)\b", UNCONFIRMED),
    Cue("deny-verb", r"\b" + _DENY_VERB + r"\b", DENIES),
    Cue("not-true", r"(?:\bnot|n[’']t)\s+(?:\w+\s+)?true\b|\buntrue\b", DENIES),
    Cue("false", r"\b(?:false|baseless|unfounded|fabricated|groundless|bogus)\b", DENIES),
    Cue(
        "dismissive",
        r"\b(?:rul(?:e|es|ed|ing)\s+out|scoff(?:s|ed|ing)?\s+at|laugh(?:s|ed|ing)?\s+off"
        r"|brush(?:es|ed|ing)?\s+(?:off|aside)|hit(?:s|ting)?\s+back\s+at"
        r"|pour(?:s|ed|ing)?\s+cold\s+water\s+on)\b",
        DENIES,
    ),
    Cue(
        "no-truth", r"\bno\s+truth\s+(?:to|in)\b|(?:\bnot|n[’']t)\s+(?:\w+\s+)?the\s+case\b", DENIES
    ),
    Cue(
        "nonsense",
        r"\b(?:nonsense|rubbish|hoax|wide\s+of\s+the\s+mark"
        r"|(?:pure|complete|total|utter|a)\s+(?:fiction|fabrication|lie)|fabrications"
        r"|(?:as|were|are|outright|of)\s+lies)\b",
        DENIES,
    ),
)

_COMPILED: tuple[tuple[Cue, re.Pattern[str]], ...] = tuple(
    (c, re.compile(c.pattern, re.IGNORECASE)) for c in CUES
)


@dataclass(frozen=True)
class CueMatch:
    start: int
    end: int
    stance: str
    name: str


def find_cues(text: str) -> list[CueMatch]:
    """Every non-overlapping lexicon match in ``text``, by position; earlier entries win overlaps.

    Offsets are code points into ``text``, so a caller can turn a match into a Denial span.
    """
    taken: list[CueMatch] = []
    for cue, rx in _COMPILED:
        for m in rx.finditer(text):
            if m.end() <= m.start() or any(m.start() < t.end and t.start < m.end() for t in taken):
                continue
            taken.append(CueMatch(m.start(), m.end(), cue.stance, cue.name))
    return sorted(taken, key=lambda c: c.start)


def cue_stance(text: str) -> str:
    """Stance signalled by a cue (or a short cue + context): denies, unconfirmed or asserts."""
    for cue, rx in _COMPILED:
        if rx.search(text):
            return cue.stance
    return ASSERTS
