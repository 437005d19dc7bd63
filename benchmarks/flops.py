"""Peak fp32 matmul FLOP/s of this machine with torch: the denominator of model FLOP utilisation.

``python -m benchmarks.flops [--size 2048] [--repeats 5]``; other benchmarks import
:func:`matmul_flops` to measure on the same thread count they train or infer with.
"""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks.common import median_seconds, write_result


def matmul_flops(
    size: int = 2048, threads: int | None = None, repeats: int = 5, warmup: int = 2
) -> float:
    """FLOP/s of a ``size`` x ``size`` fp32 matmul (2 n^3 FLOPs), median of ``repeats`` after warm-up.

    ``threads`` sets torch's intra-op threads for the measurement and restores them after.
    """
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        a = torch.randn(size, size, generator=gen)
        b = torch.randn(size, size, generator=gen)
        c = torch.empty(size, size)
        with torch.inference_mode():
            seconds = median_seconds(lambda: torch.mm(a, b, out=c), repeats, warmup)
    finally:
        torch.set_num_threads(before)
    return 2 * size**3 / seconds


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    rows = []
    for threads in sorted({1, torch.get_num_threads()}):
        flops = matmul_flops(args.size, threads, args.repeats)
        rows.append({"threads": threads, "size": args.size, "gflops": round(flops / 1e9, 2)})
        print(
            f"matmul {args.size}x{args.size} fp32, {threads} thread(s): {flops / 1e9:.1f} GFLOP/s"
        )
    summary = {"peak_gflops": max(r["gflops"] for r in rows)}
    write_result(
        "flops", rows, summary, notes="median of repeats after 2 warm-up runs; FLOPs = 2 n^3"
    )
    return summary


if __name__ == "__main__":
    main()
