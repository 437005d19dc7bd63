"""Training throughput of the stance classifier and the span tagger: our trainer vs a plain Trainer.

For each model and each training-set size (default 32/64/128 synthetic pairs or articles, one epoch):

* **ours**: :func:`pipelines.learn.train.fit` with the project's params (dynamic padding, length
  grouping, ``torch_threads``), i.e. exactly what ``dvc repro`` runs;
* **plain**: an unoptimised ``transformers.Trainer`` on the same tokenised examples, padded to
  ``max_length``, no length grouping, default collator, torch's default thread count.

Protocol: one untimed warm-up run of each setup per model (imports, first allocations, thread
pools), then ``--repeats`` (at least 3) timed runs of each setup per size, alternating which
setup goes first, so drift on a shared machine (run-to-run noise here is 15-25%) falls on both.
Reported: the median run with its min/max, examples/s, tokens/s (real tokens, padding excluded,
so both count the same work), MFU of the measured matmul rate = 6 x per-token parameters x
tokens/s / the fp32 matmul FLOP/s measured just before each run
(:func:`benchmarks.flops.matmul_flops`, same threads; not the CPU's theoretical peak), and for
the plain run the same utilisation including the padding it computes. Per-token parameters
leave out the embeddings (looked up, not multiplied) and the pooler (run once per sequence).
The speed-up is plain/ours within each repeat: median and min/max of those ratios.
``python -m benchmarks.train --sizes 8 --tasks stance`` is a quick trial.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

from benchmarks.common import ROOT, spread, write_result
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


def per_token_params(spec: Any, p: Any) -> int:
    """Parameters each token is multiplied through: no embeddings, no pooler (it runs on [CLS])."""
    import transformers

    from pipelines.models.encoding import resolve_base_model

    model = getattr(transformers, spec.model_class).from_pretrained(
        resolve_base_model(p.base_model), num_labels=len(spec.labels), use_safetensors=True
    )
    pooler = sum(t.numel() for name, t in model.named_parameters() if "pooler." in name)
    return int(model.num_parameters(exclude_embeddings=True)) - pooler


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

    from pipelines.models.encoding import IGNORE_INDEX, load_tokenizer, resolve_base_model

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


SETUPS = ("plain", "ours")


def row_of(
    task: str, setup: str, size: int, runs: list[dict[str, Any]], n_params: int
) -> dict[str, Any]:
    """One table row from the repeated runs of a setup: the median run, with the spread."""
    seconds = spread([r["seconds"] for r in runs])
    peak = statistics.median(r["matmul_flops"] for r in runs)
    sec, first = seconds["median"], runs[0]
    return {
        "model": task,
        "setup": setup,
        "articles_or_pairs": size,
        "examples": first["examples"],
        "threads": first["threads"],
        "repeats": len(runs),
        "seconds": sec,
        "seconds_min": seconds["min"],
        "seconds_max": seconds["max"],
        "examples_per_s": round(first["examples"] / sec, 2),
        "tokens_per_s": round(first["tokens"] / sec, 1),
        "mfu": round(6 * n_params * first["tokens"] / sec / peak, 4),
        "hw_util_with_padding": round(6 * n_params * first["padded_tokens"] / sec / peak, 4)
        if first["padded_tokens"]
        else None,
        "matmul_gflops": round(peak / 1e9, 1),
        "per_token_params": n_params,
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
        default=3,
        help="timed runs per setup and size (at least 3): median and min/max are reported",
    )
    args = ap.parse_args(argv)
    if args.repeats < 3:
        ap.error("--repeats must be at least 3: a median of fewer runs says little")
    default_threads = torch.get_num_threads()
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for task in args.tasks:
        p, spec = task_setup(task, args.params, min(args.sizes))
        n_params = per_token_params(spec, p)

        def run(setup: str, data: Any, p: Any = p, spec: Any = spec) -> dict[str, Any]:
            threads = default_threads if setup == "plain" else p.torch_threads
            # measured next to each run: on a shared machine the available compute drifts
            peak = matmul_flops(threads=threads, repeats=3)
            r = run_plain(spec, p, data, threads) if setup == "plain" else run_ours(spec, p, data)
            return r | {"matmul_flops": peak}

        warm = dataset_dict(task, min(args.sizes))  # p and spec above are for this size
        for setup in SETUPS:
            run(setup, warm)  # warm-up, not timed
        for size in args.sizes:
            p, spec = task_setup(task, args.params, size)
            data = dataset_dict(task, size)
            runs: dict[str, list[dict[str, Any]]] = {setup: [] for setup in SETUPS}
            for rep in range(args.repeats):
                for setup in SETUPS if rep % 2 == 0 else SETUPS[::-1]:
                    runs[setup].append(run(setup, data, p, spec))
            for setup in SETUPS:
                row = row_of(task, setup, size, runs[setup], n_params)
                rows.append(row)
                print(
                    f"{task:7s} {setup:5s} n={size:4d} ({row['examples']} examples): median {row['seconds']:7.2f}s "
                    f"[{row['seconds_min']:.2f}-{row['seconds_max']:.2f}] {row['examples_per_s']:7.2f} ex/s "
                    f"{row['tokens_per_s']:9.1f} tok/s MFU {row['mfu']:.1%} of measured matmul rate"
                )
            if size == max(args.sizes):
                ratios = spread(
                    [
                        plain["seconds"] / ours["seconds"]
                        for plain, ours in zip(runs["plain"], runs["ours"], strict=True)
                    ]
                )
                summary[f"{task}_speedup_at_{size}"] = ratios["median"]
                summary[f"{task}_speedup_min_max_at_{size}"] = [ratios["min"], ratios["max"]]
                summary[f"{task}_mfu_ours_at_{size}"] = rows[-1]["mfu"]
    write_result(
        "train",
        rows,
        summary,
        notes=f"synthetic data, 1 epoch; a warm-up run per setup, then {args.repeats} repeats alternating "
        "plain/ours order: seconds = median run (min, max); speed-up = plain/ours within a repeat (median, min/max); "
        "tokens exclude padding; mfu = 6 x per-token params (no embeddings, no pooler) x tokens/s "
        "/ the fp32 matmul rate measured before each run (not the CPU's nominal peak); "
        "'ours' seconds include its per-epoch checkpoint save, 'plain' saves nothing",
    )
    return rows


if __name__ == "__main__":
    main()
