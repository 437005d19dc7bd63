"""The runtimes side by side on the real test sets: ``claimtrace classify`` and ``predict`` as
whole processes (start-up and model loading included), each under ``torch``, ``onnx`` and
``onnx-int8``, beside the naive run (torch, one pair or one article per model call).

Needs a default ``make pipeline`` run (``models/``, ``data/datasets/``). Per command and runtime:
items/s, peak resident memory of the process (``wait4``), the speed-up over the naive run, label
agreement with torch (same batch size) and the F1 of each against the gold labels; then predict's
scaling in the number of articles (projected to 100k) and in the length of one single-line
article. Order alternates between repeats; seconds are medians.

``python -m benchmarks.runtime --pairs 64 --articles 4 --repeats 1`` is a quick trial.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, spread, write_result
from pipelines.core import io
from pipelines.core.params import load_section
from pipelines.models.annotate import PredictParams

RUNTIMES = ("torch", "onnx", "onnx-int8")
EXE = Path(sys.executable).parent / "claimtrace"


def run_process(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command, start-up included."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{err[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    """The project's JSONL writer, returning the path (a command's input file)."""
    io.write_jsonl(path, rows)
    return path


def macro_f1(gold: list[str], pred: list[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(gold, pred, average="macro", labels=sorted(set(gold))))


def span_f1(gold: list[set[tuple[int, int, str]]], pred: list[set[tuple[int, int, str]]]) -> float:
    """Exact-match micro F1 over Source and Claim spans (the tagger's headline figure)."""
    tp = sum(len(g & p) for g, p in zip(gold, pred, strict=True))
    n_gold, n_pred = sum(map(len, gold)), sum(map(len, pred))
    return 2 * tp / (n_gold + n_pred) if n_gold + n_pred else 0.0


def stance_inputs(datasets: Path, n: int) -> list[dict[str, Any]]:
    """``n`` PolNeAR test relation pairs (a seeded sample), gold stance kept in the record."""
    from datasets import load_from_disk

    from pipelines.core.document import PAIR_STANCES

    # in memory: a cache file written beside the split would modify a DVC output
    ds = load_from_disk(str(datasets / "stance" / "test_polnear")).shuffle(
        seed=13, keep_in_memory=True
    )
    ds = ds.select(range(min(n, len(ds))))
    return [
        {"id": r["id"], "claim": r["claim"], "context": r["context"], "source": r["source"],
         "gold": PAIR_STANCES[r["stance"]]}
        for r in ds
    ]  # fmt: skip


def articles(datasets: Path, n: int) -> list[dict[str, Any]]:
    """``n`` PolNeAR test articles (primary annotator), gold Source/Claim spans kept."""
    from datasets import load_from_disk

    ds = load_from_disk(str(datasets / "tagger" / "test_polnear"))
    rows = [r for r in ds if r["primary"]][:n]
    return [
        {"id": r["id"], "text": r["text"],
         "gold": [[a, b, lab] for a, b, lab in zip(r["span_starts"], r["span_ends"], r["span_labels"], strict=True)
                  if lab in ("Source", "Claim")]}
        for r in rows
    ]  # fmt: skip


def compare(
    name: str, inputs: Path, params: Path, variants: dict[str, list[str]], repeats: int, tmp: Path
) -> dict[str, dict[str, Any]]:
    """Each variant's seconds (median of ``repeats``, order alternating), peak RSS and output."""
    runs: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    order = list(variants)
    for rep in range(repeats):
        for v in order if rep % 2 == 0 else order[::-1]:
            out = tmp / f"{name}-{v}.jsonl"
            cmd = [str(EXE), name, str(inputs), "-o", str(out), "--params", str(params)]
            runs[v].append(run_process(cmd + variants[v]))
            print(f"{name} {v}: {runs[v][-1][0]:.1f}s", flush=True)
    return {
        v: {
            "seconds": spread([s for s, _ in r]),
            "peak_rss_mb": round(max(m for _, m in r)),
            "out": list(io.read_jsonl(tmp / f"{name}-{v}.jsonl")),
        }
        for v, r in runs.items()
    }


def result_row(
    command: str,
    variant: str,
    r: dict[str, Any],
    res: dict[str, Any],
    n: int,
    agree: float,
    f1: float,
) -> dict[str, Any]:
    """One table row of :func:`compare`'s result ``r`` (speed-up against ``res["naive"]``)."""
    sec = r["seconds"]["median"]
    return {
        "command": command, "variant": variant, "items": n,
        "unit": "pairs" if command == "classify" else "articles",
        "seconds": sec, "seconds_min": r["seconds"]["min"], "seconds_max": r["seconds"]["max"],
        "items_per_s": round(n / sec, 3), "peak_rss_mb": r["peak_rss_mb"],
        "speedup_vs_naive": round(res["naive"]["seconds"]["median"] / sec, 2),
        "agreement_with_torch": round(agree, 4), "f1": round(f1, 4),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pairs", type=int, default=512)
    ap.add_argument("--articles", type=int, default=20)
    ap.add_argument("--scaling", type=int, nargs="+", default=[10, 20, 40])
    ap.add_argument("--lengths", type=int, nargs="+", default=[25_000, 50_000, 100_000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--datasets", type=Path, default=ROOT / "data" / "datasets")
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    args = ap.parse_args(argv)
    if not (args.datasets / "stance").is_dir() or not (args.models / "stance").is_dir():
        raise SystemExit("benchmarks.runtime: run `make pipeline` first (models/, data/datasets/)")
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    tmp = Path(tempfile.mkdtemp(prefix="claimtrace-bench-"))
    args.params = _with_models(args.params, args.models, tmp)
    os.environ.setdefault("CLAIMTRACE_CACHE", str(tmp / "cache"))
    # untimed: export and quantise both models once (the cache a user's first run fills)
    warm = write_jsonl(tmp / "warm.jsonl", articles(args.datasets, 1))
    for runtime in RUNTIMES[1:]:
        run_process([str(EXE), "predict", str(warm), "-o", str(tmp / "w.jsonl"),
                     "--params", str(args.params), "--runtime", runtime])  # fmt: skip

    # classify: pairs/s, agreement and macro-F1 on PolNeAR test relations
    pairs = stance_inputs(args.datasets, args.pairs)
    gold = [p["gold"] for p in pairs]
    variants = {"naive": ["--runtime", "torch", "--batch-size", "1"]} | {
        r: ["--runtime", r, "--batch-size", "32"] for r in RUNTIMES
    }
    res = compare("classify", write_jsonl(tmp / "pairs.jsonl", pairs), args.params, variants,
                  args.repeats, tmp)  # fmt: skip
    ref = [o["stance"] for o in res["torch"]["out"]]
    for v, r in res.items():
        labels = [o["stance"] for o in r["out"]]
        agree = statistics.mean(a == b for a, b in zip(labels, ref, strict=True))
        rows.append(result_row("classify", v, r, res, len(pairs), agree, macro_f1(gold, labels)))

    # predict: articles/s, span agreement and Source/Claim exact F1 on PolNeAR test articles
    docs = articles(args.datasets, args.articles)
    gold_spans = [{tuple(g) for g in d["gold"]} for d in docs]
    variants = {"naive": ["--runtime", "torch", "--batch-size", "1"]} | {
        r: ["--runtime", r] for r in RUNTIMES
    }
    res = compare("predict", write_jsonl(tmp / "articles.jsonl", docs), args.params, variants,
                  args.repeats, tmp)  # fmt: skip

    def spans(out: list[dict[str, Any]]) -> list[set[tuple[int, int, str]]]:
        return [{(s["start"], s["end"], s["label"]) for s in o["spans"] if s["label"] in ("Source", "Claim")}
                for o in out]  # fmt: skip

    ref_spans = spans(res["torch"]["out"])
    for v, r in res.items():
        got = spans(r["out"])
        rows.append(result_row("predict", v, r, res, len(docs), span_f1(ref_spans, got),
                               span_f1(gold_spans, got)))  # fmt: skip

    # scaling in the corpus size (the params' runtime): time linear, memory flat -> 100k projection
    default = load_section(PredictParams, "predict", args.params).runtime
    points = []
    for n in args.scaling:
        inp = write_jsonl(tmp / f"n{n}.jsonl", articles(args.datasets, n))
        sec, rss = run_process([str(EXE), "predict", str(inp), "-o", str(tmp / "o.jsonl"),
                                "--params", str(args.params)])  # fmt: skip
        points.append((n, sec, rss))
        rows.append({"command": "predict", "variant": f"{default} (params)", "items": n,
                     "unit": "articles", "seconds": round(sec, 2), "items_per_s": round(n / sec, 3),
                     "peak_rss_mb": round(rss)})  # fmt: skip
        print(f"scaling {n}: {sec:.1f}s {rss:.0f} MB", flush=True)
    slope, intercept = _fit([(n, s) for n, s, _ in points])
    summary |= {
        "predict_s_per_article": round(slope, 3),
        "predict_startup_s": round(intercept, 1),
        "predict_100k_articles_hours_projected": round((intercept + slope * 100_000) / 3600, 1),
        "peak_rss_mb_smallest_vs_largest": f"{points[0][2]:.0f} / {points[-1][2]:.0f}",
    }

    # one single-line article of growing length (the 5 MB case): seconds per 1,000 chars
    base = " ".join(d["text"].replace("\n", " ") for d in articles(args.datasets, 200))
    long_points = []
    for n in args.lengths:
        inp = write_jsonl(tmp / f"long{n}.jsonl", [{"id": f"long{n}", "text": base[:n]}])
        sec, rss = run_process([str(EXE), "predict", str(inp), "-o", str(tmp / "o.jsonl"),
                                "--params", str(args.params)])  # fmt: skip
        long_points.append((n, sec))
        rows.append({"command": "predict", "variant": "one line", "items": 1, "unit": f"{n:,} chars",
                     "seconds": round(sec, 2), "peak_rss_mb": round(rss)})  # fmt: skip
        print(f"long {n}: {sec:.1f}s {rss:.0f} MB", flush=True)
    per_char, _ = _fit(long_points)
    summary |= {
        "one_line_s_per_1000_chars": round(per_char * 1000, 3),
        "one_line_5mb_minutes_projected": round(per_char * 5_000_000 / 60, 1),
    }
    write_result(
        "runtime",
        rows,
        summary,
        notes=f"whole `claimtrace classify`/`predict` processes (start-up and model loading "
        f"included), {args.repeats} repeats in alternating order, median seconds (min, max); "
        "naive = torch with batch size 1 (one pair, or one tagger window, per model call); "
        "agreement_with_torch = share of the same labels (classify) or exact-span "
        "F1 against torch's spans (predict); f1 = macro-F1 of the stance labels against gold "
        "(PolNeAR test relations) or Source/Claim exact-span F1 against gold (PolNeAR test "
        "articles); peak RSS of the process (wait4); ONNX graphs exported once before timing",
    )


def _with_models(params: Path, models: Path, tmp: Path) -> Path:
    """A copy of ``params`` whose classify and predict sections use the models in ``models``."""
    import yaml

    data = yaml.safe_load(params.read_text(encoding="utf-8"))
    data["classify"]["model"] = data["predict"]["model"] = str(models.resolve() / "stance")
    data["predict"]["tagger"] = str(models.resolve() / "tagger")
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope and intercept."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0
    return slope, my - slope * mx


if __name__ == "__main__":
    main()
