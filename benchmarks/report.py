"""``benchmarks/results/*.json`` -> Markdown tables, written into README.md between the bench markers.

Every number comes from the JSON files (nothing is measured here). ``--print`` only prints.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from benchmarks.common import PROTOCOLS, RESULTS, ROOT

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
ORDER = (
    "flops",
    "precision",
    "train",
    "inference",
    "runtime",
    "span_decoding",
    "dvc_noop",
    "studio",
)
TITLES = {
    "flops": "Matmul peak (fp32, torch)",
    "train": "Training throughput: ours vs plain Trainer",
    "inference": "Inference throughput (classify / predict)",
    "runtime": "Runtimes: torch / ONNX / int8, whole commands on the test sets",
    "span_decoding": "Span decoding steps, one at a time (validation articles)",
    "precision": "bf16 autocast against fp32 on this CPU",
    "dvc_noop": "DVC overhead",
    "studio": "Label Studio import / export",
}


# column headers that need more than the JSON key: utilisation is of the matmul rate measured
# on the machine (benchmarks.flops), not of the CPU's nominal peak
HEADERS = {
    "mfu": "MFU of measured matmul rate",
    "hw_util_with_padding": "util. with padding, of measured matmul rate",
}


def _cell(value: Any, key: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1%}" if "mfu" in key or "util" in key else f"{value:g}"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False).replace("|", "\\|")
    return str(value).replace("|", "\\|")


def table(rows: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    lines = [
        "| " + " | ".join(HEADERS.get(c, c) for c in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    lines += ["| " + " | ".join(_cell(row.get(c), c) for c in columns) + " |" for row in rows]
    return lines


def _machine(m: Any) -> str:
    if not isinstance(m, dict):
        return f"machine: {m} (no date, CPU or load recorded)."
    torch = (
        f"torch {m['torch']} with {m.get('torch_threads', '?')} threads, " if "torch" in m else ""
    )
    return (
        f"{m.get('date', '?')}: {m.get('cpu_model', '?')}, {m.get('usable_cores', '?')} cores, "
        f"{torch}load average {m.get('load_average_1m', '?')}."
    )


def _outdated(name: str, data: dict[str, Any]) -> str | None:
    """A warning when the file was recorded by an older method than the benchmark's current one."""
    if name not in PROTOCOLS:
        return None
    current, change = PROTOCOLS[name]
    recorded = data.get("protocol", 1)
    if recorded >= current:
        return None
    return (
        f"**Recorded by an older method (protocol {recorded}; now {current}: {change}): "
        "rerun `make bench` on an idle machine for figures to rely on.**"
    )


def section(name: str, data: dict[str, Any]) -> list[str]:
    """One benchmark: machine line, notes, its ``rows`` table and ``summary``.

    A result without ``rows`` (another schema, e.g. studio.json) is shown as a table of its
    dict-valued fields (one row each) and a summary of its scalar fields.
    """
    name = data.get("name") or name
    lines = [
        f"#### {TITLES.get(name, name)} (`benchmarks/results/{name}.json`)",
        "",
        _machine(data.get("machine")),
    ]
    outdated = _outdated(name, data)
    if outdated:
        lines += ["", outdated, ""]
    if data.get("notes"):
        lines.append(f"{data['notes']}.")
    lines.append("")
    rows = data.get("rows")
    summary = data.get("summary")
    if rows is None:
        known = {"name", "machine", "notes"}
        rows = [
            {"measure": k, **v} for k, v in data.items() if k not in known and isinstance(v, dict)
        ]
        summary = {k: v for k, v in data.items() if k not in known and not isinstance(v, dict)}
    if rows:
        lines += table(rows)
        lines.append("")
    if summary:
        lines.append(
            "Summary: " + ", ".join(f"{k} = {_cell(v, k)}" for k, v in summary.items()) + "."
        )
        lines.append("")
    return lines


def render(results: Path = RESULTS) -> str:
    files = sorted(
        results.glob("*.json"),
        key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else len(ORDER), p.stem),
    )
    if not files:
        return "_No benchmark results yet: run `make bench`._\n"
    lines = ["Figures from `make bench` (numbers only from `benchmarks/results/*.json`).", ""]
    for path in files:
        lines += section(path.stem, json.loads(path.read_text(encoding="utf-8")))
    return "\n".join(lines).rstrip() + "\n"


def replace_block(readme: Path, body: str) -> None:
    """Replace the text between the markers; the markers must be present exactly once."""
    text = readme.read_text(encoding="utf-8")
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise SystemExit(f"{readme}: needs exactly one {START} ... {END} block")
    head, rest = text.split(START)
    _, tail = rest.split(END)
    tmp = readme.with_name(f".{readme.name}.tmp")
    tmp.write_text(f"{head}{START}\n{body}{END}{tail}", encoding="utf-8")
    os.replace(tmp, readme)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    ap.add_argument(
        "--print", action="store_true", help="print the Markdown instead of editing README.md"
    )
    args = ap.parse_args(argv)
    body = render()
    if args.print:
        print(body)
    else:
        replace_block(args.readme, body)
        print(f"updated the benchmark block of {args.readme}")


if __name__ == "__main__":
    main()
