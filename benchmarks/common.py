"""What every benchmark shares: the machine description and writing ``results/<name>.json``."""

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

RESULTS = Path(__file__).with_name("results")
ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """CPU model, cores (all / usable by this process), torch threads and versions, UTC date."""
    import torch

    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1m": round(os.getloadavg()[0], 2),  # shared machines: context for the figures
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def write_result(
    name: str, rows: list[dict[str, Any]], summary: dict[str, Any] | None = None, notes: str = ""
) -> Path:
    """``results/<name>.json`` (atomic): machine, rows (one table), summary figures, notes."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {
        "name": name,
        "machine": machine(),
        "rows": rows,
        "summary": summary or {},
        "notes": notes,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    print(f"wrote {path.relative_to(ROOT)}")
    return path


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
