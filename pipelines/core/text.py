"""Text helpers shared by the data, model and rule code: sentence splitting and stance markers.

Offsets are Python code points, as everywhere in the document model.

**Sentences.** Every sentence splitter in the project lives here. There are four, because each
output was built with one of them and changing a splitter changes that output:

* :func:`sentences`: pysbd per line, exact offsets; the rule-based annotator's attributions.
* :func:`split_sentences` / :func:`sentence_starts`: a quick regex; build_dataset's choice of
  FNC-1/Emergent body sentences and predict's "same or nearby sentence" test.
* :func:`sentence_window`: cuts a window at sentence ends; the marked contexts of stance pairs
  (the datasets and the trained models depend on it).
* :func:`rough_sentences`: the fastest split (pysbd is ~50 ms per FNC-1 body, too slow for 75k
  pairs); the rule-based stance baseline.

**Markers.** A stance context marks its Source and Claim with typed markers (added to the
tokenizer as special tokens): :func:`relation_context` for annotated relations,
:func:`pair_texts` for plain (claim, context, source) pairs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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


def sentence_window(text: str, start: int, end: int, pad: int) -> tuple[int, int]:
    """Extend [start, end) by up to ``pad`` characters each side, cut back to sentence boundaries."""
    left = max(0, start - pad)
    if left > 0:
        ends = [m.end() for m in _SENTENCE_END.finditer(text, left, start)]
        left = ends[0] if ends else left
    right = min(len(text), end + pad)
    if right < len(text):
        starts = [m.start() for m in _SENTENCE_END.finditer(text, end, right)]
        right = starts[-1] + 1 if starts else right
    return left, max(right, end)


# --- stance markers ----------------------------------------------------------------------------


def insert_markers(text: str, marks: Sequence[tuple[int, int, str, str]]) -> str:
    """Insert ``open``/``close`` strings at code-point offsets ``(start, end, open, close)``.

    At one position closing markers come before opening ones, so adjacent spans stay readable.
    """
    events: list[tuple[int, int, int, str]] = []
    for i, (start, end, open_, close) in enumerate(marks):
        events.append((start, 1, i, open_ + " "))
        events.append((end, 0, -i, " " + close))
    out, pos = [], 0
    for at, _, _, marker in sorted(events):
        out.append(text[pos:at])
        out.append(marker)
        pos = at
    out.append(text[pos:])
    return "".join(out)


def relation_context(
    text: str, source: tuple[int, int] | None, claim: tuple[int, int], max_chars: int
) -> str:
    """The claim's sentence window with ``[SRC]``/``[CLM]`` markers around the source and the claim.

    Source and claim further apart than ``max_chars`` get one window each, joined by " … ",
    so the context stays short enough for the model without losing either end.
    """
    spans = [(claim[0], claim[1], CLM_OPEN, CLM_CLOSE)]
    if source is not None:
        spans.append((source[0], source[1], SRC_OPEN, SRC_CLOSE))
    lo, hi = min(s for s, *_ in spans), max(e for _, e, *_ in spans)
    groups = [spans] if hi - lo <= max_chars else [[s] for s in sorted(spans)]
    pieces = []
    for group in groups:
        a, b = min(s for s, *_ in group), max(e for _, e, *_ in group)
        left, right = sentence_window(text, a, b, max(0, (max_chars // len(groups) - (b - a)) // 2))
        marks = [(s - left, e - left, o, c) for s, e, o, c in group]
        pieces.append(insert_markers(text[left:right], marks).strip())
    return " … ".join(pieces)


def pair_texts(claim: str, context: str, source: str | None) -> tuple[str, str]:
    """The two tokenizer segments of a stance pair: the claim, and the context with the source marked.

    A context built by :func:`relation_context` already carries markers; a plain one (FNC-1,
    Emergent) gets its first occurrence of ``source`` marked, if a source is given.
    """
    if source and SRC_OPEN not in context:
        at = context.find(source)
        if at >= 0:
            context = insert_markers(context, [(at, at + len(source), SRC_OPEN, SRC_CLOSE)])
    return claim, context
