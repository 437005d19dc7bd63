"""What every benchmark shares: the machine description and writing ``results/<name>.json``.

Every results file starts with the same header: ``name``, ``protocol`` (the version of the
benchmark's method, see :data:`PROTOCOLS`), ``machine`` (date, CPU, cores, threads, load), then
``rows``, ``summary`` and ``notes``. ``CLAIMTRACE_BENCH_RESULTS=/tmp/x`` writes the files
elsewhere (a trial run with tiny sizes must not replace the recorded figures).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(os.environ.get("CLAIMTRACE_BENCH_RESULTS") or Path(__file__).with_name("results"))
ROOT = Path(__file__).resolve().parents[1]

# The method each benchmark follows; bump a number when the method changes, and say how, so
# the report marks figures recorded by an older method instead of passing them off as current.
PROTOCOLS: dict[str, tuple[int, str]] = {
    "flops": (1, ""),
    "train": (
        2,
        "one warm-up run per setup, then at least 3 repeats alternating plain/ours order, "
        "median with min/max; per-token parameters exclude the pooler",
    ),
    "inference": (
        2,
        "every model warmed up at each batch size it is measured at, repeats alternating "
        "batched/naive order, median with min/max",
    ),
    "runtime": (1, ""),
    "span_decoding": (1, ""),
    "precision": (1, ""),
    "dvc_noop": (1, ""),
    "studio": (2, "the common results header (date, CPU, threads, load)"),
}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(with_torch: bool = True) -> dict[str, Any]:
    """CPU model, cores (all / usable by this process), torch threads and versions, UTC date.

    ``with_torch=False`` (the Label Studio benchmark) leaves torch out rather than importing it.
    """
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
    }
    if with_torch:
        import torch

        info |= {"torch_threads": torch.get_num_threads(), "torch": torch.__version__}
    return info | {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1m": round(os.getloadavg()[0], 2),  # shared machines: context for the figures
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def write_result(
    name: str,
    rows: list[dict[str, Any]],
    summary: dict[str, Any] | None = None,
    notes: str = "",
    path: Path | None = None,
    with_torch: bool = True,
) -> Path:
    """``results/<name>.json`` (atomic, or ``path``): the common header, rows (one table),
    summary figures, notes."""
    path = path or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "name": name,
        "protocol": PROTOCOLS[name][0],
        "machine": machine(with_torch),
        "rows": rows,
        "summary": summary or {},
        "notes": notes,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    print(
        f"wrote {path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path}"
    )
    return path


def spread(values: list[float], digits: int = 2) -> dict[str, float]:
    """Median, min and max of repeated measurements (the spread shows how noisy they were)."""
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def median_seconds(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def peak_rss() -> Iterator[dict[str, float]]:
    """Peak resident memory while the block runs, sampled every 5 ms (torch allocates outside
    Python's allocator, so tracemalloc would miss the tensors); ``peak_mb`` and ``delta_mb``."""
    out: dict[str, float] = {}
    base = peak = _rss_bytes()
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _rss_bytes())
            stop.wait(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield out
    finally:
        stop.set()
        thread.join()
        peak = max(peak, _rss_bytes())
        out["peak_mb"] = round(peak / 2**20, 1)
        out["delta_mb"] = round((peak - base) / 2**20, 1)
