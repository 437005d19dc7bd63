"""Fine-tune the span tagger: BIO word labels for Source, Claim and Denial over article windows.

Reads the ``tagger`` DatasetDict from build_dataset, cuts each article into overlapping windows of
``max_length`` tokens (``stride`` tokens overlap, as at inference in
:func:`pipelines.models.inference.tag_texts`), labels each word on its first sub-token from the
char spans (the other sub-tokens are ignored, as at inference, where a word takes its first
sub-token's label) and trains ``AutoModelForTokenClassification`` (see
:func:`pipelines.learn.train.fit`). After training, the lowest span score worth keeping is
fitted per label on the validation articles (:func:`fit_span_thresholds`) and saved in
``claimtrace.json``, where inference reads it.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import typer

from pipelines.core.scoring import span_score_thresholds
from pipelines.learn.dataset_rows import primary_documents
from pipelines.learn.train import (
    TaggerParams,
    TaskSpec,
    fit,
    load_saved,
    seeded_sample,
    stage_command,
)
from pipelines.models.encoding import (
    IGNORE_INDEX,
    TAG_LABELS,
    TAG_TYPES,
    fit_trailing_punctuation,
    window_label_ids,
    word_windows,
)

# a label gets a score threshold only when validation has this many gold spans of it (PolNeAR's
# few Denial spans would make a noisy one: they keep every span)
MIN_GOLD_FOR_THRESHOLD = 50


def _windows(
    batch: dict[str, list[Any]], tokenizer: Any, max_length: int, stride: int
) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"input_ids": [], "attention_mask": [], "labels": [], "length": []}
    for text, starts, ends, kinds in zip(
        batch["text"], batch["span_starts"], batch["span_ends"], batch["span_labels"], strict=True
    ):
        spans = list(zip(starts, ends, kinds, strict=True))
        for window in word_windows(tokenizer, text, max_length, stride):
            out["input_ids"].append(window.input_ids)
            out["attention_mask"].append([1] * len(window.input_ids))
            out["labels"].append(window_label_ids(window, spans))
            out["length"].append(len(window.input_ids))
    return out


def prepare(tokenizer: Any, data: Any, p: TaggerParams) -> tuple[Any, Any]:
    """Windows of the primary-annotator articles; ``train_size``/``eval_size`` seeded window
    samples (0: every window, so every training article is seen)."""
    fn = partial(_windows, tokenizer=tokenizer, max_length=p.max_length, stride=p.stride)
    out = []
    for split, size in (("train", p.train_size), ("validation", p.eval_size)):
        ds = data[split].filter(lambda row: row["primary"], keep_in_memory=True)
        ds = ds.map(
            fn,
            batched=True,
            batch_size=32,
            remove_columns=ds.column_names,
            keep_in_memory=True,
            desc=f"windows {split}",
        )
        out.append(ds.select(seeded_sample(len(ds), size, p.seed)))
    return out[0], out[1]


def metrics(pred: Any) -> dict[str, float]:
    """Token-level scores on non-special tokens; macro F1 over the B-/I- labels (O excluded)."""
    from sklearn.metrics import accuracy_score, f1_score

    y, p = pred.label_ids.reshape(-1), pred.predictions.reshape(-1)
    keep = y != IGNORE_INDEX
    y, p = y[keep], p[keep]
    return {
        "token_accuracy": float(accuracy_score(y, p)),
        "token_macro_f1": float(
            f1_score(
                y,
                p,
                average="macro",
                labels=list(range(1, len(TAG_LABELS))),
                zero_division=0,
            )
        ),
    }


def _label_counts(ds: Any) -> Counter[int]:
    return Counter(label for row in ds["labels"] for label in row if label != IGNORE_INDEX)


def fit_span_thresholds(
    model: Any, tokenizer: Any, data: Any, folder: Path, p: TaggerParams
) -> dict[str, Any]:
    """Read each label's trailing-punctuation convention off the training annotations, then
    tag the primary-annotator validation articles with the trained model (edges trimmed so)
    and fit each label's span-score threshold on them (what goes into ``claimtrace.json`` and
    ``training_metrics.json``)."""
    from pipelines.models.inference import LoadedModel, tag_texts

    trim = fit_trailing_punctuation(
        (doc.text, [(s.start, s.end, s.label) for s in doc.spans])
        for doc in primary_documents(data["train"])
    )
    docs = primary_documents(data["validation"])
    tagger = LoadedModel(model, tokenizer, TAG_LABELS, p.max_length, p.stride, str(folder))
    tagger.info["span_trim"] = trim
    predicted = tag_texts(tagger, [doc.text for doc in docs], batch_size=p.batch_size)
    gold = [doc.spans for doc in docs]
    labels = [
        label
        for label in TAG_TYPES
        if sum(s.label == label for g in gold for s in g) >= MIN_GOLD_FOR_THRESHOLD
    ]
    fitted = span_score_thresholds(zip(gold, predicted, strict=True), labels)
    metrics: dict[str, Any] = {"validation_span_articles": len(docs)}
    for label, entry in fitted.items():
        metrics[f"validation_exact_f1_{label}"] = entry["f1"]
        metrics[f"validation_exact_f1_{label}_unfiltered"] = entry["f1_unfiltered"]
    return {
        "info": {
            "span_thresholds": {k: v["threshold"] for k, v in fitted.items()},
            "span_trim": trim,
        },
        "metrics": metrics,
    }


def spec(p: TaggerParams) -> TaskSpec:
    from transformers import DataCollatorForTokenClassification

    return TaskSpec(
        task="tagger",
        labels=TAG_LABELS,
        markers=False,
        model_class="AutoModelForTokenClassification",
        prepare=partial(prepare, p=p),
        collator=lambda tok: DataCollatorForTokenClassification(tok),
        metrics=metrics,
        class_counts=_label_counts,
        finish=partial(fit_span_thresholds, p=p),
    )


def train(dataset_dir: Path, output_dir: Path, live_dir: Path, p: TaggerParams) -> dict[str, Any]:
    return fit(spec(p), p, load_saved(dataset_dir), output_dir, live_dir, {"stride": p.stride})


command = stage_command(
    "tagger",
    TaggerParams,
    train,
    "eval_token_macro_f1",
    "Fine-tune the Source/Claim/Denial span tagger on the tagger dataset and save it as safetensors.",
)


if __name__ == "__main__":
    typer.run(command)
