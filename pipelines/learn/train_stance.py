"""Fine-tune the stance classifier: (claim, marked context) -> asserts / denies / unconfirmed / unrelated.

Reads the ``stance`` DatasetDict from build_dataset, trains ``AutoModelForSequenceClassification``
(see :func:`pipelines.learn.train.fit` for checkpoints, determinism and DVCLive logging) and writes a
safetensors model dir with its tokenizer (markers included) and ``training_metrics.json``.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import typer

from pipelines.learn.train import (
    TaskSpec,
    TrainParams,
    balanced_sample,
    fit,
    load_saved,
    seeded_sample,
    stage_command,
)
from pipelines.models.encoding import STANCE_LABELS, encode_pairs


def _encode(batch: dict[str, list[Any]], tokenizer: Any, max_length: int) -> dict[str, list[Any]]:
    enc = encode_pairs(tokenizer, batch["claim"], batch["context"], batch["source"], max_length)
    enc["labels"] = batch["stance"]
    enc["length"] = [len(ids) for ids in enc["input_ids"]]
    return dict(enc)


def prepare(tokenizer: Any, data: Any, p: TrainParams) -> tuple[Any, Any]:
    """Class-balanced ``train_size`` sample of train, ``eval_size`` sample of validation, tokenised."""
    train = data["train"].select(balanced_sample(data["train"]["stance"], p.train_size, p.seed))
    validation = data["validation"].select(
        seeded_sample(len(data["validation"]), p.eval_size, p.seed)
    )
    fn = partial(_encode, tokenizer=tokenizer, max_length=p.max_length)
    return tuple(  # type: ignore[return-value]
        ds.map(
            fn,
            batched=True,
            remove_columns=ds.column_names,
            keep_in_memory=True,
            desc="tokenise pairs",
        )
        for ds in (train, validation)
    )


def metrics(pred: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    y, p = pred.label_ids, pred.predictions
    return {
        "accuracy": float(accuracy_score(y, p)),
        "macro_f1": float(
            f1_score(
                y,
                p,
                average="macro",
                labels=list(range(len(STANCE_LABELS))),
                zero_division=0,
            )
        ),
    }


def spec(p: TrainParams) -> TaskSpec:
    from transformers import DataCollatorWithPadding

    return TaskSpec(
        task="stance",
        labels=STANCE_LABELS,
        markers=True,
        model_class="AutoModelForSequenceClassification",
        prepare=partial(prepare, p=p),
        collator=lambda tok: DataCollatorWithPadding(tok),
        metrics=metrics,
        class_counts=lambda ds: Counter(ds["labels"]),
    )


def train(dataset_dir: Path, output_dir: Path, live_dir: Path, p: TrainParams) -> dict[str, Any]:
    build = dataset_dir / "build_params.json"  # the context size predict must reproduce
    info = (
        {"context_chars": json.loads(build.read_text())["context_chars"]} if build.is_file() else {}
    )
    return fit(spec(p), p, load_saved(dataset_dir), output_dir, live_dir, info)


command = stage_command(
    "stance",
    TrainParams,
    train,
    "eval_macro_f1",
    "Fine-tune the stance classifier on the stance dataset and save it as safetensors.",
)


if __name__ == "__main__":
    typer.run(command)
