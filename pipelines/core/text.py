"""Text helpers shared by the data, model and rule code: sentence splitting and stance markers.

Offsets are Python code points, as everywhere in the document model.

**Sentences.** Every sentence splitter in the project lives here. There are three, because
each output was built with one of them and changing a splitter changes that output:

* :func:`sentences`: pysbd per line, exact offsets; the rule-based annotator's attributions.
* :func:`split_sentences` / :func:`sentence_starts` (and the sentence ends that bound a stance
  context): a quick regex; build_dataset's choice of FNC-1/Emergent body sentences, the
  relatedness features, and linking's "same or nearby sentence" test.
* :func:`rough_sentences`: the fastest split (pysbd is ~50 ms per FNC-1 body, too slow for 75k
  pairs); the rule-based stance baseline.

**Stance contexts.** A relation's context is the stretch from its Source to its Claim with
typed markers (special tokens) around both (:func:`relation_context`); a ``classify`` line is
brought to the same form by :func:`pair_texts`, which finds the source and the claim in it
(:func:`locate`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# Typed markers around the Source and the Claim inside a stance context (added as special tokens).
SRC_OPEN, SRC_CLOSE, CLM_OPEN, CLM_CLOSE = "[SRC]", "[/SRC]", "[CLM]", "[/CLM]"
MARKERS: tuple[str, ...] = (SRC_OPEN, SRC_CLOSE, CLM_OPEN, CLM_CLOSE)

_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+['\"’”)\]]*|\n|$)")
_SENTENCE_END = re.compile(r"[.!?]['\"’”)\]]*\s+|\n+")
_ROUGH_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")


# --- sentences ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _segmenter() -> Any:
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def sentences(text: str) -> list[tuple[int, int]]:
    """Sentence offsets: each line split by pysbd, located back in the text (never re-typed)."""
    out = []
    pos = 0
    for line in text.split("\n"):
        if line.strip():
            cursor = 0
            for sent in _segmenter().segment(line):
                core = sent.strip()
                if not core:
                    continue
                at = line.find(core, cursor)
                if at < 0:  # pysbd never rewrites with clean=False; skip rather than guess
                    continue
                out.append((pos + at, pos + at + len(core)))
                cursor = at + len(core)
        pos += len(line) + 1
    return out


def _regex_sentences(text: str) -> list[re.Match[str]]:
    return [m for m in _SENTENCE.finditer(text) if m.group().strip()]


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text``, stripped (a quick regex split at . ! ? and line breaks)."""
    return [m.group().strip() for m in _regex_sentences(text)]


def sentence_starts(text: str) -> list[int]:
    """Code-point offsets where the sentences of :func:`split_sentences` start ([0] if none)."""
    return [m.start() for m in _regex_sentences(text)] or [0]


def rough_sentences(text: str) -> list[str]:
    """The fastest split: after . ! ? followed by white space, and at line breaks."""
    return [s for s in _ROUGH_SENTENCE_BREAK.split(text) if s.strip()]


# --- stance markers ----------------------------------------------------------------------------


def insert_markers(text: str, marks: Sequence[tuple[int, int, str, str]]) -> str:
    """Insert ``open``/``close`` strings at code-point offsets ``(start, end, open, close)``.

    At one position closing markers come before opening ones, so adjacent spans stay readable,
    and nested spans nest (the outer span's markers outside the inner one's).
    """
    events: list[tuple[int, int, int, str]] = []
    for start, end, open_, close in marks:
        # at one offset: closings first; the span that ends later opens first and closes last
        events.append((start, 1, -end, open_ + " "))
        events.append((end, 0, -start, " " + close))
    out, pos = [], 0
    for at, _, _, marker in sorted(events):
        out.append(text[pos:at])
        out.append(marker)
        pos = at
    out.append(text[pos:])
    return "".join(out)


def elide(text: str, max_chars: int) -> str:
    """``text`` cut to about ``max_chars`` by dropping words from its middle (" … " marks the cut).

    Beginning and end both carry information (a claim's subject, a quote's closing words), so
    the middle goes; cuts fall between words.
    """
    if len(text) <= max_chars:
        return text
    head = text[: max_chars * 2 // 3].rsplit(" ", 1)[0]
    tail = text[len(text) - (max_chars - len(head) - 3) :].split(" ", 1)[-1]
    return f"{head} … {tail}"


@dataclass(frozen=True)
class ContextLimits:
    """How much of an article a stance context keeps, all derived from one ``max_chars``.

    ``pad``: text kept before the first and after the last of source and claim (cut back to a
    sentence or word boundary); ``claim``: the longest claim kept whole (longer ones are
    elided); ``gap``: the longest stretch kept whole between source and claim, where the cue is.
    """

    pad: int
    claim: int
    gap: int

    @classmethod
    def of(cls, max_chars: int) -> ContextLimits:
        return cls(pad=max_chars // 8, claim=max_chars // 3, gap=max_chars // 2)


def _outer_window(text: str, lo: int, hi: int, pad: int) -> tuple[int, int]:
    """[lo, hi) widened by up to ``pad`` characters each side, never past a sentence end or a
    line break, and otherwise cut at a space (no half words)."""
    left = max(0, lo - pad)
    ends = [m.end() for m in _SENTENCE_END.finditer(text, left, lo)]
    if ends:
        left = ends[-1]
    elif left > 0:
        space = text.find(" ", left, lo)
        left = space + 1 if space >= 0 else lo
    right = min(len(text), hi + pad)
    starts = [m.start() for m in _SENTENCE_END.finditer(text, hi, right)]
    if starts:
        right = starts[0] + 1
    elif right < len(text):
        space = text.rfind(" ", hi, right)
        right = space if space >= 0 else hi
    return left, max(right, hi)


def relation_context(
    text: str,
    source: tuple[int, int] | None,
    claim: tuple[int, int],
    max_chars: int,
    mark_claim: bool = True,
) -> str:
    """The stretch of ``text`` from the source to the claim, markers around both.

    What decides a stance is the cue between a source and its claim ("said", "denied", "could
    not confirm"), so the context keeps that stretch whole (up to ``ContextLimits.gap``
    characters), a claim's beginning and end, and a little text around (within the sentence);
    the rest is elided. About 50 tokens for a typical attribution, instead of a 500-character
    window that mostly repeats the claim. With ``mark_claim=False`` the claim is left unmarked
    (how ``classify`` sees a pair whose claim is not found word for word in its context).
    """
    limits = ContextLimits.of(max_chars)
    spans = [claim] + ([source] if source is not None else [])
    lo, hi = min(s for s, _ in spans), max(e for _, e in spans)
    left, right = _outer_window(text, lo, hi, limits.pad)
    overlap = source is not None and source[0] < claim[1] and claim[0] < source[1]
    if overlap:  # nested spans: mark in place, nothing elided between them
        marks = [(source[0] - left, source[1] - left, SRC_OPEN, SRC_CLOSE)]  # type: ignore[index]
        if mark_claim:
            marks.append((claim[0] - left, claim[1] - left, CLM_OPEN, CLM_CLOSE))
        return insert_markers(text[left:right], marks).strip()
    pieces, pos = [], left
    for start, end in sorted(spans):
        gap = text[pos:start]
        pieces.append(gap if pos == left else elide(gap, limits.gap))
        if (start, end) == claim:
            inner = elide(text[start:end], limits.claim)
            pieces.append(f"{CLM_OPEN} {inner} {CLM_CLOSE}" if mark_claim else inner)
        else:
            pieces.append(f"{SRC_OPEN} {text[start:end]} {SRC_CLOSE}")
        pos = end
    pieces.append(text[pos:right])
    return "".join(pieces).strip()


_FUZZY_WORD = re.compile(r"\w+")


def locate(text: str, phrase: str, near: int | None = None) -> tuple[int, int] | None:
    """Where ``phrase`` occurs in ``text``: word for word, else ignoring case, else the stretch of
    words that best matches it (at least 60% word F1), or None.

    ``near``: among several exact occurrences, the one closest to this offset. The fuzzy match
    lets ``classify`` mark a claim quoted with small changes ("Russia used" for "Russia had
    used"), so the model sees the same marked input it was trained on.
    """
    phrase = phrase.strip()
    if not phrase:
        return None
    for flags in (0, re.IGNORECASE):
        found = [m.span() for m in re.finditer(re.escape(phrase), text, flags)]
        if found:
            if near is None:
                return found[0]
            return min(found, key=lambda s: abs(s[0] - near))
    want = [w.lower() for w in _FUZZY_WORD.findall(phrase)]
    have = list(_FUZZY_WORD.finditer(text))
    if not want or not have:
        return None
    best, best_f1 = None, 0.6
    wanted = set(want)
    first = [i for i, m in enumerate(have) if m.group().lower() in wanted]
    for i in first:  # a match starts and ends on a word of the phrase
        for j in range(i, min(len(have), i + 2 * len(want))):
            if have[j].group().lower() not in wanted:
                continue
            got = [m.group().lower() for m in have[i : j + 1]]
            common = sum((Counter(got) & Counter(want)).values())
            f1 = 2 * common / (len(got) + len(want))
            if f1 > best_f1:
                best, best_f1 = (have[i].start(), have[j].end()), f1
    return best


def pair_texts(claim: str, context: str, source: str | None, max_chars: int) -> tuple[str, str]:
    """The two tokenizer segments of a stance pair: the claim, and its context with markers.

    A context that already carries markers (the datasets, ``predict``) is used as it is. For a
    plain one (a ``classify`` line) with a source, the source and the claim are located in it
    (:func:`locate`; the source occurrence nearest the claim) and the context is rebuilt the way
    training saw it (:func:`relation_context`); a claim that cannot be found stays unmarked. A
    context without a source (headline/body pairs) is left to the model as it is.
    """
    limits = ContextLimits.of(max_chars)
    head = elide(claim.strip(), limits.claim)
    if not source or SRC_OPEN in context or CLM_OPEN in context:
        return head, context
    claim_at = locate(context, claim)
    source_at = locate(context, source, near=claim_at[0] if claim_at else None)
    if source_at is None:
        return head, context
    if claim_at is None:
        window = (source_at, (source_at[1], min(len(context), source_at[1] + limits.gap)))
        return head, relation_context(context, window[0], window[1], max_chars, mark_claim=False)
    return head, relation_context(context, source_at, claim_at, max_chars)
