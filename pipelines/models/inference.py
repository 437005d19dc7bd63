"""Load a trained model folder and run it: stance labels for pairs, spans for a text.

A model folder holds safetensors weights, the tokenizer and ``claimtrace.json`` (task,
max_length, stride); a folder with pickle files is refused. Inputs are encoded exactly as in
training (:mod:`pipelines.models.encoding`); spans returned by :func:`tag_text` always satisfy
``span.text == text[span.start:span.end]``.

Heavy libraries (torch, transformers) are imported inside functions only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipelines.core.document import Span
from pipelines.models.encoding import (
    MODEL_INFO,
    PICKLE_SUFFIXES,
    decode_bio,
    encode_pairs,
    load_tokenizer,
    merge_windows,
    tokenize_windows,
)


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    labels: tuple[str, ...]
    max_length: int
    stride: int
    path: str


def _check_model_dir(model_dir: Path) -> None:
    if not (model_dir / "model.safetensors").is_file():
        raise FileNotFoundError(f"{model_dir}: no model.safetensors; train it first (dvc repro)")
    pickles = sorted(p.name for p in model_dir.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise ValueError(f"{model_dir}: refusing to load a model dir with pickle files {pickles}")


def _load(model_dir: str | os.PathLike[str], task: str) -> LoadedModel:
    from transformers import (
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
    )

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
    return LoadedModel(
        model,
        tok,
        labels,
        int(info["max_length"]),
        int(info.get("stride", 0)),
        str(path),
    )


def load_stance(model_dir: str | os.PathLike[str]) -> LoadedModel:
    return _load(model_dir, "stance")


def load_tagger(model_dir: str | os.PathLike[str]) -> LoadedModel:
    return _load(model_dir, "tagger")


class PairLike(Protocol):
    claim: str
    context: str
    source: str | None


def classify_pairs(
    model: LoadedModel, pairs: Sequence[PairLike], batch_size: int = 32
) -> list[tuple[str, dict[str, float]]]:
    """Stance label and per-label probabilities for each pair, in input order.

    Pairs are batched by length (less padding); output order matches the input.
    """
    import torch

    if not pairs:
        return []
    enc = encode_pairs(
        model.tokenizer,
        [p.claim for p in pairs],
        [p.context for p in pairs],
        [p.source for p in pairs],
        model.max_length,
    )
    order = sorted(range(len(pairs)), key=lambda i: len(enc["input_ids"][i]))
    results: list[tuple[str, dict[str, float]] | None] = [None] * len(pairs)
    with torch.inference_mode():
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            batch = model.tokenizer.pad(
                {k: [enc[k][i] for i in idx] for k in enc}, return_tensors="pt"
            )
            probs = torch.softmax(model.model(**batch).logits.float(), dim=-1).tolist()
            for i, row in zip(idx, probs, strict=True):
                scores = {label: round(p, 6) for label, p in zip(model.labels, row, strict=True)}
                results[i] = (max(scores, key=scores.__getitem__), scores)
    return results  # type: ignore[return-value]


def tag_text(
    model: LoadedModel, text: str, batch_size: int = 16, id_prefix: str = "p"
) -> list[Span]:
    """Source/Claim/Denial spans in ``text`` (code-point offsets), from overlapping token windows.

    Each token's label comes from the window where it is most central, so window edges with
    little context never decide; spans are decoded from the merged BIO sequence.
    """
    import torch

    if not text.strip():
        return []
    enc = tokenize_windows(model.tokenizer, [text], model.max_length, model.stride)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    windows: list[list[tuple[int, int, tuple[str, float]]]] = []
    with torch.inference_mode():
        for b in range(0, len(enc["input_ids"]), batch_size):
            rows = range(b, min(b + batch_size, len(enc["input_ids"])))
            batch = model.tokenizer.pad(
                {k: [enc[k][i] for i in rows] for k in keys}, return_tensors="pt"
            )
            probs = torch.softmax(model.model(**batch).logits.float(), dim=-1)
            best_p, best_i = probs.max(dim=-1)
            for j, i in enumerate(rows):
                offsets = enc["offset_mapping"][i]
                windows.append(
                    [
                        (s, e, (model.labels[int(best_i[j, t])], float(best_p[j, t])))
                        for t, (s, e) in enumerate(offsets)
                        if s != e
                    ]
                )
    tokens = [(s, e, lab, p) for s, e, (lab, p) in merge_windows(windows)]
    return decode_bio(text, tokens, id_prefix=id_prefix)
