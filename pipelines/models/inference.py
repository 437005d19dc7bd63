"""Load a trained model folder and run it: stance labels for pairs, spans for a text.

A model folder holds safetensors weights, the tokenizer and ``claimtrace.json`` (task,
max_length, stride); a folder with pickle files is refused. Inputs are encoded exactly as in
training (:mod:`pipelines.models.encoding`); spans returned by :func:`tag_text` always satisfy
``span.text == text[span.start:span.end]``.

Heavy libraries (torch, transformers) are imported inside functions only.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipelines.core.document import Span
from pipelines.core.text import MARKERS
from pipelines.models.encoding import (
    MODEL_INFO,
    PICKLE_SUFFIXES,
    Window,
    decode_words,
    encode_pairs,
    load_tokenizer,
    merge_windows,
    viterbi,
    word_windows,
)
from pipelines.models.relatedness import RelatednessModel
from pipelines.models.runtime import accelerate, check_runtime

UNRELATED = "unrelated"
DEFAULT_CONTEXT_CHARS = 500  # models trained before claimtrace.json recorded it


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    labels: tuple[str, ...]
    max_length: int
    stride: int
    path: str
    info: dict[str, Any] = field(default_factory=dict)  # claimtrace.json
    relatedness: RelatednessModel | None = None  # stance models: the headline/body first stage
    runtime: str = "torch"  # what runs ``model`` (:mod:`pipelines.models.runtime`)

    @property
    def context_chars(self) -> int:
        return int(self.info.get("context_chars", DEFAULT_CONTEXT_CHARS))

    @property
    def span_thresholds(self) -> dict[str, float]:
        """Taggers: the lowest span score kept, per label (fitted on validation; none before)."""
        return {k: float(v) for k, v in self.info.get("span_thresholds", {}).items()}

    @property
    def span_trim(self) -> dict[str, str]:
        """Taggers: the trailing punctuation each label's spans leave out (fitted on the
        training annotations; none before)."""
        return {k: str(v) for k, v in self.info.get("span_trim", {}).items()}


def _check_model_dir(model_dir: Path) -> None:
    if not (model_dir / "model.safetensors").is_file():
        raise FileNotFoundError(f"{model_dir}: no model.safetensors; train it first (dvc repro)")
    pickles = sorted(p.name for p in model_dir.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise ValueError(f"{model_dir}: refusing to load a model dir with pickle files {pickles}")


def _load(model_dir: str | os.PathLike[str], task: str, runtime: str) -> LoadedModel:
    from transformers import (
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
    )

    check_runtime(runtime)
    path = Path(model_dir)
    _check_model_dir(path)
    info = json.loads((path / MODEL_INFO).read_text(encoding="utf-8"))
    if info["task"] != task:
        raise ValueError(f"{path}: is a {info['task']} model, expected a {task} model")
    cls = (
        AutoModelForSequenceClassification if task == "stance" else AutoModelForTokenClassification
    )
    model = cls.from_pretrained(
        path, use_safetensors=True, trust_remote_code=False, local_files_only=True
    )
    model.eval()
    tok = load_tokenizer(str(path), markers=False)
    labels = tuple(model.config.id2label[i] for i in range(model.config.num_labels))
    model, runtime = accelerate(model, path, task, runtime)
    return LoadedModel(
        model,
        tok,
        labels,
        int(info["max_length"]),
        int(info.get("stride", 0)),
        str(path),
        info,
        RelatednessModel.load(path) if task == "stance" else None,
        runtime,
    )


def load_stance(model_dir: str | os.PathLike[str], runtime: str = "torch") -> LoadedModel:
    return _load(model_dir, "stance", runtime)


def load_tagger(model_dir: str | os.PathLike[str], runtime: str = "torch") -> LoadedModel:
    return _load(model_dir, "tagger", runtime)


class PairLike(Protocol):
    claim: str
    context: str
    source: str | None


def pair_log_probs(
    model: Any,
    tokenizer: Any,
    claims: Sequence[str],
    contexts: Sequence[str],
    sources: Sequence[str | None],
    max_length: int,
    context_chars: int,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> list[list[float]]:
    """The transformer's log-probabilities per label for each pair, in input order (batched by
    length, so padding stays small); ``progress`` gets the pairs done after each batch."""
    import torch

    if not claims:
        return []
    enc = encode_pairs(tokenizer, claims, contexts, sources, max_length, context_chars)
    order = sorted(range(len(claims)), key=lambda i: len(enc["input_ids"][i]))
    out: list[list[float]] = [[] for _ in claims]
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            batch = tokenizer.pad({k: [enc[k][i] for i in idx] for k in enc}, return_tensors="pt")
            rows = torch.log_softmax(model(**batch).logits.float(), dim=-1).tolist()
            for i, row in zip(idx, rows, strict=True):
                out[i] = row
            if progress is not None:
                progress(len(idx))
    return out


def is_relation(pair: PairLike) -> bool:
    """A Source->Claim pair (a source, or a context already marked) rather than headline/body."""
    return bool(pair.source) or any(m in pair.context for m in MARKERS)


def _softmax(values: Sequence[float]) -> list[float]:
    top = max(values)
    exps = [math.exp(v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def classify_pairs(
    model: LoadedModel,
    pairs: Sequence[PairLike],
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[str, dict[str, float]]]:
    """Stance label and per-label scores for each pair, in input order.

    Source->Claim pairs: the transformer's four labels, shifted by the model's ``relation``
    biases. Headline/body pairs (no source, no markers): first the relatedness stage; a pair it
    finds related gets the transformer's best related label (``headline`` biases), with scores
    P(related) x P(label | related); the transformer never runs on the unrelated ones. A model
    without a relatedness stage treats every pair as a relation.
    """
    biases = model.info.get("biases", {})
    p_related = _relatedness(model, pairs)
    threshold = model.relatedness.threshold if model.relatedness else 0.0
    run = [i for i in range(len(pairs)) if p_related.get(i, 1.0) >= threshold]
    log_probs = dict(
        zip(run, _log_probs(model, [pairs[i] for i in run], batch_size, progress), strict=True)
    )
    out = []
    for i in range(len(pairs)):
        if i in p_related:
            out.append(
                _headline_scores(
                    model.labels, p_related[i], log_probs.get(i), biases.get("headline"), threshold
                )
            )
        else:
            out.append(_relation_scores(model.labels, log_probs[i], biases.get("relation")))
    return out


def _relatedness(model: LoadedModel, pairs: Sequence[PairLike]) -> dict[int, float]:
    """P(related) of each headline/body pair (by index); none without a relatedness stage."""
    if model.relatedness is None:
        return {}
    headline = [i for i, p in enumerate(pairs) if not is_relation(p)]
    probs = model.relatedness.probabilities(
        [pairs[i].claim for i in headline], [pairs[i].context for i in headline]
    )
    return dict(zip(headline, probs, strict=True))


def _log_probs(
    model: LoadedModel,
    pairs: Sequence[PairLike],
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> list[list[float]]:
    return pair_log_probs(
        model.model,
        model.tokenizer,
        [p.claim for p in pairs],
        [p.context for p in pairs],
        [p.source for p in pairs],
        model.max_length,
        model.context_chars,
        batch_size,
        progress,
    )


def _relation_scores(
    labels: Sequence[str], log_probs: Sequence[float], bias: Sequence[float] | None
) -> tuple[str, dict[str, float]]:
    bias = bias or [0.0] * len(labels)
    probs = _softmax([v + b for v, b in zip(log_probs, bias, strict=True)])
    scores = {label: round(q, 6) for label, q in zip(labels, probs, strict=True)}
    return max(scores, key=scores.__getitem__), scores


def _headline_scores(
    labels: Sequence[str],
    p_related: float,
    log_probs: Sequence[float] | None,
    bias: Sequence[float] | None,
    threshold: float,
) -> tuple[str, dict[str, float]]:
    related = [k for k, label in enumerate(labels) if label != UNRELATED]
    if log_probs is None:  # below the threshold: the transformer did not run
        conditional = [1.0 / len(related)] * len(related)
    else:
        bias = bias or [0.0] * len(labels)
        conditional = _softmax([log_probs[k] + bias[k] for k in related])
    scores = {labels[k]: round(p_related * q, 6) for k, q in zip(related, conditional, strict=True)}
    scores[UNRELATED] = round(1.0 - p_related, 6)
    if p_related < threshold:
        return UNRELATED, scores
    best = max(range(len(related)), key=conditional.__getitem__)
    return labels[related[best]], scores


def tag_texts(
    model: LoadedModel,
    texts: Sequence[str],
    batch_size: int = 16,
    id_prefix: str = "p",
    progress: Callable[[int], None] | None = None,
    min_scores: Mapping[str, float] | None = None,
    join_same_line: bool = True,
    trim: Mapping[str, str] | None = None,
) -> list[list[Span]]:
    """Source/Claim/Denial spans of each text (code-point offsets), from overlapping windows.

    The windows of all ``texts`` are batched together (a short article fills a batch with the
    next one's windows); each word's label comes from the window where it is most central, and
    the labels of a text are decoded together with constrained Viterbi (:func:`viterbi`).
    ``progress`` is called with the number of windows done after each batch (long inputs).
    Spans scoring below the model's fitted thresholds are dropped (``min_scores`` replaces
    them, ``{}`` keeps every span); span edges lose the model's trailing punctuation
    (``trim`` replaces it); ``join_same_line``: see :func:`decode_words`.
    """
    floor = model.span_thresholds if min_scores is None else dict(min_scores)
    cut = model.span_trim if trim is None else dict(trim)
    windows = [
        (k, w)
        for k, text in enumerate(texts)
        if text.strip()
        for w in word_windows(model.tokenizer, text, model.max_length, model.stride)
    ]
    per_text: list[list[list[tuple[int, int, Any]]]] = [[] for _ in texts]
    for b in range(0, len(windows), batch_size):
        chunk = windows[b : b + batch_size]
        rows = _window_log_probs(model, [w for _, w in chunk])
        for (k, window), lp in zip(chunk, rows, strict=True):
            per_text[k].append([(s, e, lp[t]) for t, s, e in window.words])
        if progress is not None:
            progress(len(chunk))
    return [
        _decode_text(model, text, parts, id_prefix, floor, join_same_line, cut)
        for text, parts in zip(texts, per_text, strict=True)
    ]


def tag_text(
    model: LoadedModel, text: str, batch_size: int = 16, id_prefix: str = "p"
) -> list[Span]:
    """:func:`tag_texts` for one text."""
    return tag_texts(model, [text], batch_size, id_prefix)[0]


def _window_log_probs(model: LoadedModel, windows: Sequence[Window]) -> list[Any]:
    import torch

    n = max(len(w.input_ids) for w in windows)
    ids = torch.zeros((len(windows), n), dtype=torch.long)
    mask = torch.zeros((len(windows), n), dtype=torch.long)
    for j, w in enumerate(windows):
        ids[j, : len(w.input_ids)] = torch.tensor(w.input_ids)
        mask[j, : len(w.input_ids)] = 1
    with torch.inference_mode():
        logits = model.model(input_ids=ids, attention_mask=mask).logits.float()
    return list(torch.log_softmax(logits, dim=-1).numpy())


def _decode_text(
    model: LoadedModel,
    text: str,
    windows: list[list[tuple[int, int, Any]]],
    id_prefix: str,
    min_scores: Mapping[str, float],
    join_same_line: bool,
    trim: Mapping[str, str],
) -> list[Span]:
    import numpy as np

    merged = merge_windows(windows)
    if not merged:
        return []
    log_probs = np.stack([lp for _, _, lp in merged])
    path = viterbi(log_probs, model.labels)
    return decode_words(
        text,
        [(s, e) for s, e, _ in merged],
        [model.labels[k] for k in path],
        [float(np.exp(log_probs[i, k])) for i, k in enumerate(path)],
        id_prefix,
        min_scores,
        join_same_line,
        trim,
    )
