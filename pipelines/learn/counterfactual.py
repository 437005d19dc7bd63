"""Counterfactual cue swaps: denial and non-confirmation examples made from plain attributions.

PolNeAR marks ~21,000 attributions in its training articles but only ~130 denials and ~70
refusals to confirm, so a model trained on it alone learns that sources assert. Swapping the
reporting verb of a plain "SOURCE said CLAIM" for a denial cue ("denied", "rejected claims")
or a non-confirmation cue ("could not confirm", "declined to say whether") gives a real news
sentence whose stance follows from the new cue, with the source, the claim and the rest of the
article unchanged: the model has to read the cue, not the topic.

Rules (each has a test):

* Only the canonical order is rewritten: the source, then the cue, then the claim, the cue at
  most a few characters before the claim, all in one paragraph. "CLAIM, SOURCE said" would
  become "CLAIM, SOURCE denied", which no newspaper writes.
* Only cues whose grammatical form is known (past "said", third-person "says", plural "say",
  participle "saying") are swapped, for a phrase of the same form.
* A "whether" phrase drops a "that" opening the claim ("declined to say whether that ..." is
  not English).
* The new stance is the lexicon's reading of the new cue (:func:`pipelines.core.lexicon.cue_stance`),
  so the generated labels follow the same rules as the gold ones; the table is tested for it.

**Rebuttals** (:func:`rebut`): "X said CLAIM." becomes "X said CLAIM, but Y denied it.", Y
another named source of the article. News passages often hold two sources with different
stances on one claim (the seed article: Ukraine could not confirm what Washington asserted), and
a model trained on one-source sentences gives the second source the first one's cue. Both pairs
are kept: Y's with the clause's stance, X's still ``asserts``.

Generated examples are marked ``generated`` in the dataset and never reach a test split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipelines.core.lexicon import DENIES, UNCONFIRMED

# reporting verb (lower case) -> grammatical form
CUE_FORMS: dict[str, str] = {
    **dict.fromkeys(
        (
            "said",
            "has said",
            "have said",
            "had said",
            "also said",
            "said in a statement",
            "wrote",
            "added",
            "claimed",
            "stated",
            "insisted",
            "argued",
            "noted",
            "reported",
            "announced",
            "explained",
            "declared",
            "asserted",
            "maintained",
            "contended",
            "suggested",
            "acknowledged",
            "alleged",
            "confirmed",
            "concluded",
            "tweeted",
        ),
        "past",
    ),
    **dict.fromkeys(
        (
            "says",
            "writes",
            "claims",
            "argues",
            "insists",
            "notes",
            "suggests",
            "reports",
            "maintains",
            "contends",
            "alleges",
            "concludes",
        ),
        "singular",
    ),
    **dict.fromkeys(
        ("say", "claim", "argue", "insist", "contend", "maintain", "allege", "suggest"), "plural"
    ),
    **dict.fromkeys(
        ("saying", "adding", "arguing", "claiming", "insisting", "noting", "writing"), "participle"
    ),
}

# (stance, form) -> phrases that replace the cue; every phrase reads as ``stance`` in the lexicon
SUBSTITUTES: dict[tuple[str, str], tuple[str, ...]] = {
    (DENIES, "past"): (
        "denied",
        "flatly denied",
        "has denied",
        "strongly denied",
        "disputed",
        "rejected claims",
        "dismissed claims",
        "rejected suggestions",
        "dismissed reports",
        "denied reports",
        "rejected the claim",
        "refuted claims",
        "has repeatedly denied",
        "said it was not true",
        "said it was false",
        "insisted it was untrue",
        "called it false",
        "vehemently denied",
        "categorically denied",
        "denied allegations",
        "rejected allegations",
        "dismissed suggestions",
        "dismissed as false reports",
        "contradicted reports",
        "debunked claims",
        "repudiated claims",
        "rebuffed suggestions",
        "ruled out",
        "brushed aside claims",
        "scoffed at suggestions",
        "laughed off suggestions",
        "hit back at claims",
        "poured cold water on reports",
        "said there was no truth to reports",
        "said it was not the case",
        "called it nonsense",
        "said it was a fabrication",
    ),
    (DENIES, "singular"): (
        "denies",
        "disputes",
        "flatly denies",
        "rejects claims",
        "rejects the claim",
        "dismisses reports",
        "says it is not true",
        "says it is false",
        "rejects allegations",
        "rules out",
        "brushes aside claims",
        "scoffs at suggestions",
        "says there is no truth to reports",
        "says it is not the case",
        "calls it nonsense",
    ),
    (DENIES, "plural"): (
        "deny",
        "dispute",
        "flatly deny",
        "reject claims",
        "dismiss reports",
        "say it is not true",
        "say it is false",
        "reject allegations",
        "rule out",
        "brush aside claims",
        "scoff at suggestions",
        "say there is no truth to reports",
        "say it is not the case",
    ),
    (DENIES, "participle"): (
        "denying",
        "disputing",
        "rejecting claims",
        "dismissing reports",
        "saying it was not true",
        "ruling out",
        "brushing aside claims",
        "rejecting allegations",
        "saying there was no truth to reports",
    ),
    (UNCONFIRMED, "past"): (
        "could not confirm",
        "would not confirm",
        "declined to confirm",
        "did not confirm",
        "was unable to confirm",
        "could not independently verify",
        "would neither confirm nor deny",
        "said it could not confirm",
        "said it could not verify",
        "said it had no evidence",
        "said there was no evidence",
        "said it had no information",
        "declined to say whether",
        "would not say whether",
        "could not say whether",
        "refused to confirm",
        "did not immediately confirm",
        "has yet to confirm",
        "stopped short of confirming",
        "said it was too early to say whether",
        "said it was too soon to tell whether",
        "would not comment on whether",
        "declined to comment on whether",
        "declined to discuss whether",
        "declined to speculate on whether",
        "refused to say whether",
        "did not respond to questions about whether",
        "said it was looking into reports",
        "said it was investigating whether",
        "said it was unclear whether",
        "would not rule out",
        "said it had no way to verify",
        "said there was no indication",
        "said it had seen no evidence",
        "said it had found no proof",
        "did not deny",
        "said there was no confirmation",
    ),
    (UNCONFIRMED, "singular"): (
        "cannot confirm",
        "will not confirm",
        "declines to confirm",
        "does not confirm",
        "is unable to confirm",
        "cannot verify",
        "will neither confirm nor deny",
        "says it cannot confirm",
        "says there is no evidence",
        "declines to say whether",
        "has yet to confirm",
        "stops short of confirming",
        "says it is too early to say whether",
        "will not comment on whether",
        "says it is looking into reports",
        "does not rule out",
        "says there is no indication",
        "does not deny",
    ),
    (UNCONFIRMED, "plural"): (
        "cannot confirm",
        "will not confirm",
        "decline to confirm",
        "do not confirm",
        "are unable to confirm",
        "cannot verify",
        "say they cannot confirm",
        "say there is no evidence",
        "have yet to confirm",
        "stop short of confirming",
        "say it is too early to say whether",
        "will not comment on whether",
        "say they are looking into reports",
        "do not rule out",
        "say there is no indication",
        "do not deny",
    ),
    (UNCONFIRMED, "participle"): (
        "declining to confirm",
        "refusing to confirm",
        "saying it could not confirm",
        "saying there was no evidence",
        "stopping short of confirming",
        "saying it was too early to say whether",
        "declining to comment on whether",
        "saying there was no indication",
    ),
}
# Rebuttals: a second source answers the claim in a clause appended to its sentence. ``{source}``
# is that source's name; the words after it read as the stance in the lexicon (tested).
REBUTTALS: dict[str, tuple[str, ...]] = {
    DENIES: (
        ", but {source} denied it",
        ", but {source} rejected that",
        ", which {source} dismissed",
        ", but {source} disputed that",
        ", a claim {source} denied",
        ", a charge {source} rejected",
    ),
    UNCONFIRMED: (
        ", while {source} could not confirm it",
        ", but {source} said it could not verify that",
        ", though {source} declined to confirm it",
        ", but {source} said it had no evidence of that",
        ", which {source} would not confirm",
        ", though {source} said it was too early to say",
    ),
}
MAX_NAME_WORDS = (
    6  # a rebutting source's name: "the Foreign Ministry", "Kremlin spokesman Dmitry Peskov"
)
_PRONOUNS = frozenset(
    [
        "he",
        "she",
        "they",
        "it",
        "we",
        "i",
        "you",
        "his",
        "her",
        "their",
        "its",
        "this",
        "that",
        "these",
        "those",
        "who",
        "which",
        "one",
    ]
)
_DETERMINERS = frozenset(("The", "A", "An", "Some", "Several", "Many", "Most", "Other", "Both"))
MIN_CLAIM_WORDS = 4  # a rebutted claim is a proposition ("the vote was rigged"), not "the deal"
# from a claim's end to its sentence's period: plain words, no other period ("U.S.", "3.5")
_SENTENCE_TAIL = re.compile(r'[^\n.;:!?"“”]{0,40}(?=\.(?:\s|$))')
MAX_GAP = 60  # characters between the source's end and the claim's start
MAX_AFTER_CUE = 12  # characters between the cue and the claim ("that", a comma, a colon)
_THAT = re.compile(r"^that\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Rebuttal:
    """A text with a rebutting clause after the claim: ``source`` and ``claim`` keep their offsets
    (the clause follows both), ``rebutter`` is the second source's name inside the clause."""

    text: str
    source: tuple[int, int]
    claim: tuple[int, int]
    rebutter: tuple[int, int]
    stance: str


@dataclass(frozen=True)
class Swap:
    """A rewritten text: the source keeps its offsets, the claim moves, ``cue`` is the new phrase."""

    text: str
    source: tuple[int, int]
    claim: tuple[int, int]
    cue: tuple[int, int]
    stance: str


def find_cue(text: str, cue: str, start: int, end: int) -> tuple[int, int] | None:
    """The first whole-word occurrence of ``cue`` inside ``text[start:end]``, or None."""
    pattern = re.compile(r"(?<!\w)" + re.escape(cue) + r"(?!\w)", re.IGNORECASE)
    match = pattern.search(text, start, end)
    return match.span() if match else None


def swappable(text: str, source: tuple[int, int], claim: tuple[int, int], cue: str) -> bool:
    """Whether :func:`swap_cue` can rewrite this attribution (see the module's rules)."""
    return _locate(text, source, claim, cue) is not None


def _locate(
    text: str, source: tuple[int, int], claim: tuple[int, int], cue: str
) -> tuple[str, tuple[int, int]] | None:
    form = CUE_FORMS.get(cue.lower().strip())
    if form is None or not source[1] <= claim[0] or claim[0] - source[1] > MAX_GAP:
        return None
    if "\n" in text[source[1] : claim[0]]:
        return None
    at = find_cue(text, cue.strip(), source[1], claim[0])
    if at is None or claim[0] - at[1] > MAX_AFTER_CUE:
        return None
    return form, at


def swap_cue(
    text: str, source: tuple[int, int], claim: tuple[int, int], cue: str, stance: str, pick: int
) -> Swap | None:
    """Replace the reporting verb ``cue`` between ``source`` and ``claim`` by a ``stance`` phrase.

    ``pick`` chooses the phrase (any integer, e.g. a hash: the choice is deterministic). Returns
    None when the attribution does not fit the rules.
    """
    found = _locate(text, source, claim, cue)
    if found is None:
        return None
    form, (cue_start, cue_end) = found
    phrases = SUBSTITUTES[(stance, form)]
    phrase = phrases[pick % len(phrases)]
    between = text[cue_end : claim[0]]
    claim_text = text[claim[0] : claim[1]]
    if phrase.endswith("whether"):
        claim_text = _THAT.sub("", claim_text)
        if between.strip() in ("", "that", ",", ":"):
            between = " "
    elif between.strip() in (",", ":"):
        between = " "  # "said: X" reads as a quote; "denied X" needs no colon
    new_claim_start = cue_start + len(phrase) + len(between)
    out = text[:cue_start] + phrase + between + claim_text + text[claim[1] :]
    return Swap(
        text=out,
        source=source,
        claim=(new_claim_start, new_claim_start + len(claim_text)),
        cue=(cue_start, cue_start + len(phrase)),
        stance=stance,
    )


def can_rebut(name: str) -> bool:
    """Whether a Source's text can stand alone as the rebutting source of another claim: a name
    or noun phrase of at most ``MAX_NAME_WORDS`` words with a capital, not a pronoun ("He" only
    means something where it was written), on one line, without quotes, and without a period
    ("Sen. Cruz": the context's sentence would end at it, cutting the clause off)."""
    words = name.split()
    return (
        0 < len(words) <= MAX_NAME_WORDS
        and name[0].isupper()
        and words[0].lower() not in _PRONOUNS
        and not any(ch in name for ch in '\n.;"“”«»')
    )


def rebut(
    text: str,
    source: tuple[int, int],
    claim: tuple[int, int],
    rebutter: str,
    stance: str,
    pick: int,
) -> Rebuttal | None:
    """Append to an attribution's sentence a clause in which ``rebutter`` denies or will not
    confirm the claim: "X said CLAIM." -> "X said CLAIM, but Y denied it."

    Only the canonical order (source, a short cue, the claim of at least ``MIN_CLAIM_WORDS``
    words, all on one line) with the claim near its sentence's end is rewritten: the clause goes before the period, after at most 40
    characters of plain words ("... on Tuesday"). ``pick`` chooses the clause
    (deterministic). The original relation keeps its stance: X still asserts the claim, and a
    model has to tell the two sources' stances apart in one context.
    """
    if not source[1] <= claim[0] or claim[0] - source[1] > MAX_GAP:
        return None
    ending = _SENTENCE_TAIL.match(text, claim[1])
    if "\n" in text[source[1] : claim[0]] or ending is None:
        return None
    if not can_rebut(rebutter) or len(text[claim[0] : claim[1]].split()) < MIN_CLAIM_WORDS:
        return None
    first, _, rest = rebutter.partition(" ")
    if first in _DETERMINERS and rest:  # mid-sentence: "but the ministry denied it"
        rebutter = f"{first.lower()} {rest}"
    templates = REBUTTALS[stance]
    head, tail = templates[pick % len(templates)].split("{source}")
    at = ending.end()
    start = at + len(head)
    return Rebuttal(
        text=text[:at] + head + rebutter + tail + text[at:],
        source=source,
        claim=claim,
        rebutter=(start, start + len(rebutter)),
        stance=stance,
    )
