"""Fine-tuning shared by both models: parameters, sampling, checkpoints and :func:`fit`.

``train_stance`` and ``train_tagger`` each describe their task in a :class:`TaskSpec` (labels,
model class, how to tokenise, metrics); :func:`fit` does the rest, deterministically for a fixed
seed, resuming from its checkpoints after a crash, logging to DVCLive, and saving a safetensors
model folder atomically.

The same commands run data-parallel under ``torchrun --nproc_per_node N -m
pipelines.learn.train_stance ...`` (or ``accelerate launch``): the Trainer sees the launcher's
environment and wraps the model in DDP (gloo on CPUs, NCCL on GPUs, where it also trains in
mixed precision); every worker trains on its share of each batch, and rank 0 alone tidies the
checkpoints, logs to DVCLive, runs the task's ``finish`` step and saves the model, once.

Heavy libraries (torch, transformers, datasets, dvclive) are imported inside functions only.
"""

import hashlib
import json
import math
import os
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.core.io import atomic_dir, write_json
from pipelines.core.params import DEFAULT_PARAMS, ParamsError, load_section
from pipelines.core.stagelog import one_line_errors, stage
from pipelines.models.encoding import (
    IGNORE_INDEX,
    MODEL_INFO,
    PICKLE_SUFFIXES,
    label_maps,
    load_tokenizer,
    resolve_base_model,
)

# inverse-frequency class weights are capped at this multiple of the smallest
MAX_CLASS_WEIGHT = 10.0


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
    class_weighting: float  # loss weight (1 / label frequency) ** this: 0 = none, 1 = inverse
    eval_size: int
    eval_per_epoch: bool
    logging_steps: int
    torch_threads: int

    def validate(self) -> None:
        if self.max_length < 16 or self.max_length > 512:
            raise ValueError(f"max_length must be in [16, 512], got {self.max_length}")
        if self.epochs <= 0 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("epochs, batch_size and learning_rate must be positive")
        if self.eval_size < 0:
            raise ValueError("eval_size must be >= 0 (0 = all)")
        if not 0 <= self.class_weighting <= 1:
            raise ValueError(f"class_weighting must be in [0, 1], got {self.class_weighting}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


@dataclass(frozen=True)
class TaggerParams(TrainParams):
    train_size: int  # windows sampled from the training articles (0 = all)
    stride: int

    def validate(self) -> None:
        super().validate()
        if self.train_size < 0:
            raise ValueError("train_size must be >= 0 (0 = all)")
        if not 0 <= self.stride < self.max_length // 2:
            raise ValueError(f"stride must be in [0, max_length/2), got {self.stride}")


def seeded_sample(n: int, size: int, seed: int) -> list[int]:
    if size <= 0 or size >= n:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), size))


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


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
    metrics: Callable[[Any], dict[str, float]]  # EvalPrediction (argmax predictions) -> metrics
    class_counts: Callable[[Any], Counter[int]]  # train Dataset -> label counts (for weighting)
    # (trained model, tokenizer, DatasetDict, model folder being written) -> {"info": ...,
    # "metrics": ...}: extra parts fitted after training, saved in the same atomic folder
    finish: Callable[[Any, Any, Any, Path], dict[str, Any]] | None = None


def class_weights(counts: Counter[int], n_labels: int, power: float = 1.0) -> list[float]:
    """Loss weights per label id: (inverse frequency) ** ``power``, capped at
    :data:`MAX_CLASS_WEIGHT` times the smallest (rare token labels would swamp the loss); a
    label never seen gets 0. ``power`` 0.5 (square root) keeps rare span starts heard without
    making the tagger open spans everywhere."""
    total = sum(counts.values())
    raw = [(total / (n_labels * counts[i])) ** power if counts[i] else 0.0 for i in range(n_labels)]
    floor = min((w for w in raw if w > 0), default=1.0)
    return [min(w, MAX_CLASS_WEIGHT * floor) for w in raw]


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


def process_rank() -> tuple[int, int]:
    """(rank, world size) of this process: torchrun / ``accelerate launch`` set ``RANK`` and
    ``WORLD_SIZE`` in each worker's environment; a plain run is rank 0 of 1."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _import_training_libraries() -> None:
    """torch, the Trainer and DVCLive: several seconds of imports, done once up front."""
    import torch  # noqa: F401
    from dvclive import Live  # noqa: F401
    from transformers import Trainer, TrainingArguments, set_seed  # noqa: F401
    from transformers.integrations import DVCLiveCallback  # noqa: F401


def _base_model(spec: TaskSpec, params: TrainParams) -> tuple[Any, Any]:
    """Seed everything, then the tokenizer (with markers if the task uses them) and the base
    model with a fresh head for ``spec.labels``."""
    import torch
    import transformers
    from transformers import set_seed

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
    return tokenizer, model


def _checkpoints(
    spec: TaskSpec, params: TrainParams, data: Any, output_dir: Path
) -> tuple[Path, Path | None]:
    """The checkpoint folder and the checkpoint to resume from (None: start afresh).

    A run resumes only when its fingerprint (params, data, task) matches the one that wrote the
    checkpoints; anything else there is removed first.
    """
    ckpt = checkpoint_dir(output_dir)
    stamp = fingerprint(asdict(params), {k: v._fingerprint for k, v in data.items()}, spec.task)
    stamp_file = ckpt / "fingerprint.txt"
    last = (
        last_checkpoint(ckpt)
        if stamp_file.is_file() and stamp_file.read_text().strip() == stamp
        else None
    )
    if process_rank()[0] != 0:  # the other workers read; rank 0 alone tidies and stamps
        return ckpt, last
    if last is None and ckpt.exists():
        shutil.rmtree(ckpt)
    for torn in ckpt.glob("checkpoint-*"):  # e.g. a save cut short by the kill
        if torn != last:
            shutil.rmtree(torn)
    ckpt.mkdir(parents=True, exist_ok=True)
    stamp_file.write_text(stamp + "\n")
    return ckpt, last


def _training_args(params: TrainParams, ckpt: Path, do_eval: bool) -> Any:
    import torch
    from transformers import TrainingArguments

    cuda = torch.cuda.is_available()
    return TrainingArguments(
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
        use_cpu=not cuda,
        # a GPU trains in its mixed precision (bf16 where it has it); a CPU in fp32 (bf16 autocast
        # does not pay on CPUs without bf16 matmul units: benchmarks/precision.py)
        bf16=cuda and torch.cuda.is_bf16_supported(),
        fp16=cuda and not torch.cuda.is_bf16_supported(),
        train_sampling_strategy="group_by_length",
        eval_strategy="epoch" if do_eval else "no",
        save_strategy="epoch",
        save_total_limit=1,
        logging_strategy="steps",
        logging_steps=params.logging_steps,
        logging_first_step=True,
        report_to="none",
        include_num_input_tokens_seen="non_padding",
        ddp_find_unused_parameters=False,  # both heads use every parameter: no extra graph pass
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        disable_tqdm=False,
    )


@dataclass
class _Data:
    """The tokenised splits and the loss weights a run trains with."""

    train: Any
    validation: Any
    weights: list[float] | None


def _trainer(
    spec: TaskSpec,
    params: TrainParams,
    model: Any,
    tokenizer: Any,
    data: _Data,
    ckpt: Path,
    live_dir: Path,
    resume: bool,
) -> Any:
    """A Trainer that checkpoints into ``ckpt`` and logs to DVCLive under ``live_dir``."""
    import torch
    from dvclive import Live
    from transformers import Trainer
    from transformers.integrations import DVCLiveCallback

    do_eval = params.eval_per_epoch and len(data.validation) > 0
    args = _training_args(params, ckpt, do_eval)
    callbacks = []
    if process_rank()[0] == 0:  # one process logs (under torchrun every worker runs this)
        live_dir.mkdir(parents=True, exist_ok=True)
        live = Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, resume=resume)
        callbacks.append(DVCLiveCallback(live=live))
    return Trainer(
        model=model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.validation if do_eval else None,
        processing_class=tokenizer,
        data_collator=spec.collator(tokenizer),
        compute_loss_func=_weighted_loss(torch.tensor(data.weights)) if data.weights else None,
        compute_metrics=spec.metrics if do_eval else None,
        preprocess_logits_for_metrics=(lambda logits, labels: logits.argmax(dim=-1))
        if do_eval
        else None,
        callbacks=callbacks,
    )


@dataclass
class _Run:
    """What one ``trainer.train()`` call did (throughput counts this run only, not a resumed one's)."""

    output: Any  # transformers TrainOutput
    seconds: float
    cpu_seconds: float
    tokens: int
    final_eval: dict[str, Any]


def _train(trainer: Any, last: Path | None) -> _Run:
    tokens_before = 0  # tokens of the interrupted run, so throughput counts this run only
    if last is not None:
        state = json.loads((last / "trainer_state.json").read_text(encoding="utf-8"))
        tokens_before = int(state.get("num_input_tokens_seen", 0))
    t_train, cpu_train = time.perf_counter(), time.process_time()
    out = trainer.train(resume_from_checkpoint=str(last) if last else None)
    seconds = time.perf_counter() - t_train
    cpu_seconds = time.process_time() - cpu_train
    # the last epoch's evaluation (no second pass over the validation set)
    final_eval = next(
        (dict(h) for h in reversed(trainer.state.log_history) if "eval_loss" in h), {}
    )
    return _Run(
        output=out,
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        tokens=int(trainer.state.num_input_tokens_seen) - tokens_before,
        final_eval={k: v for k, v in final_eval.items() if k.startswith("eval_")},
    )


def _training_metrics(
    spec: TaskSpec,
    params: TrainParams,
    data: _Data,
    trainer: Any,
    run: _Run,
    resumed: bool,
    t0: float,
) -> dict[str, Any]:
    """``training_metrics.json``: sizes, steps, throughput, loss and the last evaluation."""
    return {
        "task": spec.task,
        "train_examples": len(data.train),
        "validation_examples": len(data.validation),
        "epochs": params.epochs,
        "steps": trainer.state.global_step,
        "resumed": resumed,
        "train_seconds": round(run.seconds, 2),
        "wall_seconds": round(time.perf_counter() - t0, 2),
        "train_tokens": run.tokens,
        "train_tokens_per_second": round(run.tokens / run.seconds, 1) if run.seconds else None,
        # CPU seconds of all threads: on a shared machine wall time overstates the cost
        "train_cpu_seconds": round(run.cpu_seconds, 2),
        "train_tokens_per_cpu_second": round(run.tokens / run.cpu_seconds, 1)
        if run.cpu_seconds
        else None,
        "train_examples_per_second": round(
            run.output.metrics.get("train_samples_per_second", math.nan), 3
        ),
        "train_loss": round(run.output.training_loss, 6),
        "torch_threads": params.torch_threads,
        "world_size": process_rank()[1],  # processes that trained together (torchrun)
        "class_weights": [round(w, 6) for w in data.weights] if data.weights else None,
        **{k: round(v, 6) if isinstance(v, float) else v for k, v in run.final_eval.items()},
    }


def _refuse_pickles(folder: Path) -> None:
    bad = sorted(p.name for p in folder.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if bad:
        raise RuntimeError(f"pickle files in the model output {bad}: refusing to publish them")


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
    epoch go to DVCLive under ``live_dir``. The model folder (weights, tokenizer,
    ``claimtrace.json`` with the task, max_length and ``extra_info``) replaces ``output_dir``
    only when complete. Returns the training metrics (also written to ``training_metrics.json``).
    """
    _import_training_libraries()  # before the clock starts: wall_seconds measures the run
    t0 = time.perf_counter()
    tokenizer, model = _base_model(spec, params)
    train, validation = spec.prepare(tokenizer, data)
    weights = (
        class_weights(spec.class_counts(train), len(spec.labels), params.class_weighting)
        if params.class_weighting
        else None
    )
    splits = _Data(train, validation, weights)
    ckpt, last = _checkpoints(spec, params, data, output_dir)
    trainer = _trainer(spec, params, model, tokenizer, splits, ckpt, live_dir, last is not None)
    run = _train(trainer, last)
    rank, world = process_rank()
    if rank != 0:  # under torchrun: the model is the same in every worker; rank 0 saves it once
        return {"rank": rank, "world_size": world, "steps": trainer.state.global_step}
    info = {"task": spec.task, "max_length": params.max_length, "base_model": params.base_model}
    with atomic_dir(output_dir) as tmp:
        trainer.model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        # saved already; the finish hook and inference feed CPU tensors (a GPU run trained it there)
        trainer.model.eval()
        trainer.model.to("cpu")
        extra = spec.finish(trainer.model, tokenizer, data, tmp) if spec.finish else {}
        write_json(
            tmp / MODEL_INFO,
            {**info, **extra_info, **extra.get("info", {})},
            indent=2,
            sort_keys=True,
        )
        metrics = _training_metrics(spec, params, splits, trainer, run, last is not None, t0)
        metrics.update(extra.get("metrics", {}))
        write_json(tmp / "training_metrics.json", metrics, indent=2, sort_keys=True)
        _refuse_pickles(tmp)
    shutil.rmtree(ckpt)
    return metrics


def load_saved(dataset_dir: Path) -> Any:
    """The DatasetDict that build_dataset saved in ``dataset_dir``, read into memory."""
    from datasets import load_from_disk

    return load_from_disk(str(dataset_dir), keep_in_memory=True)


# --- the train_stance / train_tagger commands --------------------------------------------------

# what the stage line reports, besides the task's eval metric
STAGE_COUNTS = ("train_examples", "steps", "train_tokens_per_second")
# (dataset folder, model output folder, DVCLive folder, params) -> training metrics
Train = Callable[[Path, Path, Path, Any], dict[str, Any]]


def stage_command(
    task: str, params_class: type[TrainParams], train: Train, eval_metric: str, doc: str
) -> Callable[..., None]:
    """The ``train_<task>`` command, both DVC stage and ``claimtrace train-<task>``: read the
    params section, ``train``, and print the stage line (sizes, steps, throughput, ``eval_metric``).

    Built here once for both tasks; this module does without ``from __future__ import
    annotations`` so that typer sees the options' real help texts and defaults.
    """
    section = f"train_{task}"

    def command(
        dataset: Annotated[
            Path, typer.Argument(help=f"{task} DatasetDict folder (data/datasets/{task})")
        ],
        output: Annotated[Path, typer.Argument(help=f"model output folder (models/{task})")],
        live_dir: Annotated[Path, typer.Option(help="DVCLive metrics folder")] = Path(
            f"dvclive/{task}"
        ),
        params: Annotated[
            Path, typer.Option(help=f"params file (section '{section}')")
        ] = DEFAULT_PARAMS,
    ) -> None:
        with one_line_errors(ParamsError):  # the file, the key and the fix: no traceback
            p = load_section(params_class, section, params)
        if process_rank()[0] != 0:  # a torchrun worker: trains its share; rank 0 reports
            train(dataset, output, live_dir, p)
            return
        with stage(section) as counts:
            metrics = train(dataset, output, live_dir, p)
            counts.update({k: metrics.get(k) for k in (*STAGE_COUNTS, eval_metric)})

    command.__doc__ = doc
    return command
