"""How the stance classifier and the span tagger see their inputs, in training and at inference.

One place decides how a (claim, context, source) pair or an article becomes model input, so
training (:mod:`pipelines.learn.train`) and inference (:mod:`pipelines.models.inference`) can
never drift apart: the label sets, the tokenizer with its marker tokens, pair encoding, BIO token
labels from character spans and back, and overlapping windows over long articles. Offsets stay
Python code points (the fast tokenizers' ``offset_mapping``).

Heavy libraries (transformers) are imported inside functions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipelines.core.document import PAIR_STANCES, Span
from pipelines.core.text import MARKERS, pair_texts

STANCE_LABELS: tuple[str, ...] = PAIR_STANCES
TAG_TYPES: tuple[str, ...] = ("Source", "Claim", "Denial")
TAG_LABELS: tuple[str, ...] = (
    "O",
    *(f"{p}-{t}" for t in TAG_TYPES for p in ("B", "I")),
)
IGNORE_INDEX = -100
MODEL_INFO = "claimtrace.json"  # task, max_length, stride: what inference needs besides config
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


# --- labels and tokenizer ----------------------------------------------------------------------


def label_maps(labels: Sequence[str]) -> tuple[dict[int, str], dict[str, int]]:
    return dict(enumerate(labels)), {label: i for i, label in enumerate(labels)}


def load_tokenizer(name_or_path: str, markers: bool) -> Any:
    """A fast tokenizer (needed for ``offset_mapping``), with the typed markers as special tokens."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(name_or_path, use_fast=True, trust_remote_code=False)
    if not tok.is_fast:
        raise ValueError(f"{name_or_path}: a fast tokenizer is required for code-point offsets")
    if markers:
        missing = [m for m in MARKERS if m not in tok.get_vocab()]
        if missing:
            tok.add_special_tokens(
                {"extra_special_tokens": missing}, replace_extra_special_tokens=False
            )
    return tok


# --- stance pairs ------------------------------------------------------------------------------


def encode_pairs(
    tokenizer: Any,
    claims: Sequence[str],
    contexts: Sequence[str],
    sources: Sequence[str | None],
    max_length: int,
) -> Any:
    """Tokenise (claim, context) pairs; the longer segment is truncated first."""
    texts = [pair_texts(c, x, s) for c, x, s in zip(claims, contexts, sources, strict=True)]
    return tokenizer(
        [a for a, _ in texts],
        [b for _, b in texts],
        truncation="longest_first",
        max_length=max_length,
    )


# --- span tagging: BIO over tokens with char offsets -------------------------------------------


def bio_labels(
    offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int, str]]
) -> list[int]:
    """Token label ids (:data:`TAG_LABELS`) for tokens with char ``offsets``; special tokens get -100.

    A token belongs to a span when their character ranges overlap (so a partly covered token,
    e.g. "Obama" of "Obama's", is inside). Where spans overlap, the shortest wins (an inner
    Source inside a long Claim keeps its tokens); a span that resumes after an inner one
    starts again with ``B-``, so the sequence is valid IOB2.
    """
    _, label2id = label_maps(TAG_LABELS)
    real = [(s, e) for s, e in offsets if s != e]
    lo, hi = (min(s for s, _ in real), max(e for _, e in real)) if real else (0, 0)
    near = [
        i for i, (s, e, _) in enumerate(spans) if s < hi and e > lo
    ]  # spans touching this window
    order = sorted(near, key=lambda i: (spans[i][1] - spans[i][0], spans[i][0]))
    owner: list[int | None] = []
    for start, end in offsets:
        if start == end:
            owner.append(None)
            continue
        owner.append(next((i for i in order if start < spans[i][1] and end > spans[i][0]), None))
    labels, prev = [], None
    for (start, end), own in zip(offsets, owner, strict=True):
        if start == end:
            labels.append(IGNORE_INDEX)
            continue
        if own is None:
            labels.append(label2id["O"])
        else:
            prefix = "I" if prev == own else "B"
            labels.append(label2id[f"{prefix}-{spans[own][2]}"])
        prev = own
    return labels


def _snap_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen a span that starts or ends inside a word to the whole word."""
    while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while end < len(text) and text[end - 1].isalnum() and text[end].isalnum():
        end += 1
    return start, end


def decode_bio(
    text: str, tokens: Sequence[tuple[int, int, str, float]], id_prefix: str = "p"
) -> list[Span]:
    """Spans from tokens ``(start, end, label, prob)`` sorted by start.

    ``I-X`` after ``O`` or another type starts a new span (lenient, like conlleval); a span's
    score is the mean probability of its tokens' labels; offsets are snapped to whole words.
    """
    spans: list[Span] = []
    cur: list[Any] | None = None  # [type, start, end, probs]

    def close() -> None:
        if cur is not None:
            start, end = _snap_to_words(text, cur[1], cur[2])
            if spans and spans[-1].label == cur[0] and spans[-1].end > start:
                start = spans[-1].end  # two spans of one type never overlap after snapping
            if start < end and text[start:end].strip():
                spans.append(
                    Span(
                        id=f"{id_prefix}{len(spans) + 1}",
                        label=cur[0],
                        start=start,
                        end=end,
                        text=text[start:end],
                        score=round(sum(cur[3]) / len(cur[3]), 6),
                    )
                )

    for start, end, label, prob in tokens:
        if label == "O":
            close()
            cur = None
            continue
        prefix, kind = label.split("-", 1)
        if cur is None or prefix == "B" or cur[0] != kind:
            close()
            cur = [kind, start, end, [prob]]
        else:
            cur[2] = end
            cur[3].append(prob)
    close()
    return spans


def merge_windows(
    windows: Sequence[Sequence[tuple[int, int, Any]]],
) -> list[tuple[int, int, Any]]:
    """One prediction per token from overlapping windows: the window where it is most central wins.

    ``windows`` hold ``(start, end, prediction)`` per content token (special tokens removed);
    a token is identified by its char offsets, which are unique within one text.
    """
    best: dict[tuple[int, int], tuple[int, Any]] = {}
    for window in windows:
        n = len(window)
        for i, (start, end, pred) in enumerate(window):
            centrality = min(i, n - 1 - i)
            key = (start, end)
            if key not in best or centrality > best[key][0]:
                best[key] = (centrality, pred)
    return [(s, e, p) for (s, e), (_, p) in sorted(best.items())]


def tokenize_windows(tokenizer: Any, texts: Sequence[str], max_length: int, stride: int) -> Any:
    """Overlapping windows of ``max_length`` tokens over long texts, with offsets and the source text index."""
    return tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
