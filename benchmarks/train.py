"""Training throughput of the stance classifier and the span tagger: our trainer vs a plain Trainer.

For each model and each training-set size (default 32/64/128 synthetic pairs or articles, one epoch):

* **ours**: :func:`pipelines.learn.train.fit` with the project's params (dynamic padding, length
  grouping, ``torch_threads``), i.e. exactly what ``dvc repro`` runs;
* **plain**: an unoptimised ``transformers.Trainer`` on the same tokenised examples, padded to
  ``max_length``, no length grouping, default collator, torch's default thread count.

Reported: examples/s, tokens/s (real tokens, padding excluded, so both count the same work),
model FLOP utilisation = 6 x non-embedding parameters x tokens/s / matmul FLOP/s
(:func:`benchmarks.flops.matmul_flops`, same threads, measured just before each run), and for the plain run the hardware
utilisation including the padding it computes. ``python -m benchmarks.train --sizes 32 64``;
``--repeats 3`` keeps the fastest of three runs (other jobs on a shared machine only slow a run).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

from benchmarks.common import ROOT, write_result
from benchmarks.flops import matmul_flops
from benchmarks.synthetic import dataset_dict


def task_setup(task: str, params_path: Path, size: int) -> tuple[Any, Any]:
    """(params with the benchmark's overrides, TaskSpec) of one model, from params.yaml.

    The stance model trains on exactly ``size`` synthetic relation pairs (a quarter per label),
    the tagger on all its windows; evaluation and checkpoints are off.
    """
    from pipelines.core.params import load_section
    from pipelines.models.encoding import STANCE_LABELS

    off = {"epochs": 1, "eval_size": 0, "eval_per_epoch": False, "logging_steps": 10**6}
    if task == "stance":
        from pipelines.learn.train_stance import StanceParams, spec

        p = load_section(StanceParams, "train_stance", params_path)
        sample = {f"relation/{label}": size // len(STANCE_LABELS) for label in STANCE_LABELS}
        p = dataclasses.replace(p, sample=sample, calibration_size=64, **off)
        return p, spec(p, context_chars=600)
    from pipelines.learn.train import TaggerParams
    from pipelines.learn.train_tagger import spec as tagger_spec

    p = dataclasses.replace(
        load_section(TaggerParams, "train_tagger", params_path), train_size=0, **off
    )
    return p, tagger_spec(p)


def non_embedding_params(spec: Any, p: Any) -> int:
    import transformers

    from pipelines.learn.train import resolve_base_model

    model = getattr(transformers, spec.model_class).from_pretrained(
        resolve_base_model(p.base_model), num_labels=len(spec.labels), use_safetensors=True
    )
    return int(model.num_parameters(exclude_embeddings=True))


def run_ours(spec: Any, p: Any, data: Any) -> dict[str, Any]:
    from pipelines.learn.train import fit

    with tempfile.TemporaryDirectory() as tmp:
        m = fit(spec, p, data, Path(tmp) / "models" / spec.task, Path(tmp) / "live", {})
    return {
        "examples": m["train_examples"],
        "seconds": m["train_seconds"],
        "tokens": m["train_tokens"],
        "padded_tokens": None,
        "threads": p.torch_threads,
    }


def run_plain(spec: Any, p: Any, data: Any, threads: int) -> dict[str, Any]:
    """The same tokenised examples through a default Trainer, padded to max_length."""
    import torch
    import transformers
    from transformers import Trainer, TrainingArguments, default_data_collator

    from pipelines.learn.train import resolve_base_model
    from pipelines.models.encoding import IGNORE_INDEX, load_tokenizer

    torch.set_num_threads(threads)
    base = resolve_base_model(p.base_model)
    tok = load_tokenizer(base, markers=spec.markers)
    train, _ = spec.prepare(tok, data)
    real_tokens = int(sum(sum(mask) for mask in train["attention_mask"]))
    L = p.max_length

    def pad(row: dict[str, Any]) -> dict[str, Any]:
        n = len(row["input_ids"])
        out = {
            "input_ids": row["input_ids"] + [tok.pad_token_id] * (L - n),
            "attention_mask": row["attention_mask"] + [0] * (L - n),
        }
        if "token_type_ids" in row:
            out["token_type_ids"] = row["token_type_ids"] + [0] * (L - n)
        labels = row["labels"]
        out["labels"] = labels + [IGNORE_INDEX] * (L - n) if isinstance(labels, list) else labels
        return out

    padded = train.map(
        pad, remove_columns=[c for c in train.column_names if c == "length"], keep_in_memory=True
    )
    model = getattr(transformers, spec.model_class).from_pretrained(
        base, num_labels=len(spec.labels), use_safetensors=True
    )
    if len(tok) != model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tok))
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=p.batch_size,
            num_train_epochs=1,
            report_to="none",
            save_strategy="no",
            use_cpu=True,
            disable_tqdm=True,
            seed=p.seed,
        )
        trainer = Trainer(
            model=model, args=args, train_dataset=padded, data_collator=default_data_collator
        )
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
    return {
        "examples": len(padded),
        "seconds": round(seconds, 2),
        "tokens": real_tokens,
        "padded_tokens": len(padded) * L,
        "threads": threads,
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    import torch

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument(
        "--tasks", nargs="+", default=["stance", "tagger"], choices=["stance", "tagger"]
    )
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="runs per setup; the fastest is kept (shared machines)",
    )
    args = ap.parse_args(argv)
    default_threads = torch.get_num_threads()
    rows: list[dict[str, Any]] = []
    for task in args.tasks:
        p, spec = task_setup(task, args.params, args.sizes[0])
        n_params = non_embedding_params(spec, p)
        for size in args.sizes:
            p, spec = task_setup(task, args.params, size)
            data = dataset_dict(task, size)
            for setup in ("plain", "ours"):
                threads = default_threads if setup == "plain" else p.torch_threads
                # measured next to each run: on a shared machine the available compute drifts
                peak = matmul_flops(threads=threads, repeats=3)
                r = min(
                    (
                        run_plain(spec, p, data, threads)
                        if setup == "plain"
                        else run_ours(spec, p, data)
                        for _ in range(args.repeats)
                    ),
                    key=lambda run: run["seconds"],
                )
                flops = 6 * n_params * r["tokens"] / r["seconds"]
                row = {
                    "model": task,
                    "setup": setup,
                    "articles_or_pairs": size,
                    "examples": r["examples"],
                    "threads": r["threads"],
                    "seconds": r["seconds"],
                    "examples_per_s": round(r["examples"] / r["seconds"], 2),
                    "tokens_per_s": round(r["tokens"] / r["seconds"], 1),
                    "mfu": round(flops / peak, 4),
                    "hw_util_with_padding": round(
                        6 * n_params * r["padded_tokens"] / r["seconds"] / peak, 4
                    )
                    if r["padded_tokens"]
                    else None,
                    "matmul_gflops": round(peak / 1e9, 1),
                    "non_embedding_params": n_params,
                }
                rows.append(row)
                print(
                    f"{task:7s} {setup:5s} n={size:4d} ({row['examples']} examples): {row['seconds']:7.1f}s "
                    f"{row['examples_per_s']:7.2f} ex/s {row['tokens_per_s']:9.1f} tok/s MFU {row['mfu']:.1%}"
                )
    summary = {}
    for task in args.tasks:
        mine = {
            r["articles_or_pairs"]: r for r in rows if r["model"] == task and r["setup"] == "ours"
        }
        plain = {
            r["articles_or_pairs"]: r for r in rows if r["model"] == task and r["setup"] == "plain"
        }
        big = max(mine)
        summary[f"{task}_speedup_at_{big}"] = round(plain[big]["seconds"] / mine[big]["seconds"], 2)
        summary[f"{task}_mfu_ours_at_{big}"] = mine[big]["mfu"]
    write_result(
        "train",
        rows,
        summary,
        notes="synthetic data, 1 epoch; tokens exclude padding; MFU = 6*N_non_emb*tokens/s / matmul FLOP/s; "
        "'ours' seconds include its per-epoch checkpoint save",
    )
    return rows


if __name__ == "__main__":
    main()
