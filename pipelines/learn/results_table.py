"""The README results section, generated from recorded files (never hand-written numbers).

``python -m pipelines.learn.results_table metrics README.md`` replaces what lies between
``<!-- results:start -->`` and ``<!-- results:end -->`` with the tables that ``evaluate`` also
writes to ``metrics/results.md``, and, when the README has them, what lies between
``<!-- training:start -->`` and ``<!-- training:end -->`` with the committed run's training
budget and times (parameters from ``dvc.lock``, times from ``dvclive/<model>/metrics.json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.core.io import write_text

START, END = "<!-- results:start -->", "<!-- results:end -->"
TRAINING_START, TRAINING_END = "<!-- training:start -->", "<!-- training:end -->"

# The official FNC-1 leaderboard (rank, FNC score in percent); our own scores of the same teams'
# submissions (the table) differ slightly from it.
FNC1_LEADERBOARD = {
    "talos": ("Talos", 1, 82.02),
    "athene": ("Athene", 2, 81.97),
    "uclmr": ("UCL Machine Reading", 3, 81.72),
}
ORDINALS = {1: "1st", 2: "2nd", 3: "3rd"}

SET_TITLES = {
    "fnc1": "FNC-1 competition test",
    "emergent": "Emergent test (de-duplicated)",
    "polnear": "PolNeAR test",
    "annotations": "claimtrace gold annotations (test split)",
    "passages": "Hand-written news passages (data/challenge, evaluation only)",
    "cue_paraphrases": "Hand-written cue paraphrases, wordings in no lexicon or training phrase (data/challenge)",
}
SYSTEM_NAMES = {
    "model": "**claimtrace stance model**",
    "tagger": "**claimtrace span tagger**",
    "tfidf_lr": "TF-IDF + logistic regression",
    "rules": "rule-based annotator",
    "majority": "majority class",
    **{
        system: f"{team} (FNC-1 official rank {ORDINALS[rank]}, {score:.2f})"
        for system, (team, rank, score) in FNC1_LEADERBOARD.items()
    },
}


# spans and relations come from the whole of ``predict``, not the stance model alone
SPAN_SYSTEM_NAMES = {**SYSTEM_NAMES, "model": "**claimtrace predict** (tagger + linking + stance)"}


def _f(x: float | None, percent: bool = False) -> str:
    if x is None:
        return "–"
    return f"{x:.2f}" if percent else f"{x:.3f}"


def _count_line(entry: dict[str, Any], unit: str) -> str:
    line = f"{entry['n']:,} {unit}"
    if entry.get("limited"):
        line += f" (a seeded sample of {entry['n_total']:,}: limited by the evaluate params)"
    if entry.get("n_duplicates"):
        line += f"; {entry['n_duplicates']} duplicate pairs dropped"
    if entry.get("n_claim_seen_in_train"):
        line += f"; {entry['n_claim_seen_in_train']:,} claims also occur in the training split"
    return line + "."


def stance_tables(stance: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name, entry in stance.items():
        if name == "train":
            continue
        labels = entry["labels"]
        first = next(iter(entry["systems"].values()), {})
        fnc, related = "fnc_score" in first, "related_macro_f1" in first
        head = ["system", *(["FNC score"] if fnc else []), "macro-F1"]
        head += [
            *(["related 3-way macro-F1"] if related else []),
            *(f"F1 {label}" for label in labels),
            "accuracy",
        ]
        count = _count_line(entry, "pairs")
        if any(system in FNC1_LEADERBOARD for system in entry["systems"]):
            count += (
                " The FNC-1 teams' rows score their own submitted test-set predictions with"
                " our code; their labels give the official leaderboard rank and score."
            )
        out += [f"#### {SET_TITLES.get(name, name)}", "", count, ""]
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for system, m in entry["systems"].items():
            row = [SYSTEM_NAMES.get(system, system)]
            row += [_f(m.get("fnc_score"), percent=True)] if fnc else []
            row += [_f(m["macro_f1"])]
            row += [_f(m.get("related_macro_f1"))] if related else []
            row += [_f(m["f1"][label]) for label in labels] + [_f(m["accuracy"])]
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    return out


def span_tables(spans: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name, entry in spans.items():
        labels = list(entry["gold_spans"])
        head = ["system", "match", "micro-F1", "macro-F1", *(f"F1 {x} (P/R)" for x in labels)]
        gold = ", ".join(f"{n:,} {x}" for x, n in entry["gold_spans"].items())
        count = _count_line(entry, "documents") + (f" Gold spans: {gold}." if gold else "")
        out += [f"#### {SET_TITLES.get(name, name)}", "", count, ""]
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for system, modes in entry["systems"].items():
            for mode in ("exact", "overlap"):
                m = modes[mode]
                row = [SPAN_SYSTEM_NAMES.get(system, system), mode]
                row += [_f(m["micro_f1"]), _f(m["macro_f1"])]
                row += [_prf(m[x]) for x in labels]
                out.append("| " + " | ".join(row) + " |")
        out += ["", *relation_table(entry), ""]
    return out


def _prf(m: dict[str, float]) -> str:
    return f"{_f(m['f1'])} ({_f(m['precision'])}/{_f(m['recall'])})"


def relation_table(entry: dict[str, Any]) -> list[str]:
    """End-to-end Source->Claim relations (spans found and linked, as ``predict`` outputs them)."""
    modes = ("exact", "overlap", "exact_stance", "overlap_stance")
    titles = ("exact", "overlap", "exact + stance", "overlap + stance")
    out = [
        f"Relations ({entry.get('gold_relations', 0):,} gold Source->Claim links), F1 (P/R):",
        "",
        "| system | " + " | ".join(titles) + " |",
        "|" + "---|" * (len(modes) + 1),
    ]
    for system, m in entry["systems"].items():
        if "relations" in m:
            cells = [_prf(m["relations"][mode]) for mode in modes]
            out.append(f"| {SPAN_SYSTEM_NAMES.get(system, system)} | " + " | ".join(cells) + " |")
    return out


def render(stance: dict[str, Any], spans: dict[str, Any]) -> str:
    """Markdown tables: every system on the same items, one table per test set."""
    lines = ["### Stance (claim, context) classification", ""]
    if "train" in stance:
        lines += [
            (
                f"Baselines are fit on the {stance['train']['n']:,} pairs of the dataset's train split only "
                f"(majority class: `{stance['train']['majority']}`). FNC score: the official weighted score "
                "in percent of the gold labels' score; related 3-way: macro-F1 over asserts/denies/unconfirmed "
                "on the gold related pairs."
            ),
            "",
        ]
    lines += stance_tables(stance)
    lines += ["### Spans (Claim / Source / Denial)", ""]
    lines += [
        "What `claimtrace predict` outputs (span tagger, linking, stance model; Denial spans from"
        " the cues of the relations that deny or withhold support) beside the rule-based"
        " annotator. exact: same label and offsets; overlap: per-token credit for partially"
        " matching spans. Relations: a predicted Source->Claim link is right when both its spans"
        " match a gold link's (exact offsets, or sharing a character); + stance: and the stance"
        " agrees.",
        "",
    ]
    lines += span_tables(spans)
    return "\n".join(lines).rstrip() + "\n"


def render_from_dir(metrics: Path) -> str:
    def load(name: str) -> dict[str, Any]:
        path = metrics / name
        if not path.exists():
            raise FileNotFoundError(
                f"{path} not found: run the evaluate stage first (dvc repro evaluate)"
            )
        return json.loads(path.read_text(encoding="utf-8"))

    return render(load("stance.json"), load("spans.json"))


TRAINED = (("stance", "stance model", "pairs"), ("tagger", "span tagger", "windows"))


def training_summary(lock: Path, dvclive: Path, stance: dict[str, Any] | None = None) -> str:
    """One paragraph on the committed run's training: sizes and epochs as ``dvc.lock`` records
    the parameters, seconds and tokens/s as DVCLive logged them (HF Trainer's ``train/*``)."""
    import yaml

    stages = yaml.safe_load(lock.read_text(encoding="utf-8"))["stages"]
    parts, threads = [], set()
    for model, what, unit in TRAINED:
        path = dvclive / model / "metrics.json"
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: run the train_{model} stage first")
        train = json.loads(path.read_text(encoding="utf-8"))["train"]
        params = {
            key.split(".", 1)[1]: value
            for key, value in stages[f"train_{model}"]["params"]["params.yaml"].items()
        }
        threads.add(params["torch_threads"])
        if "sample" in params:  # the stance model: a fixed count per kind and label
            size = f"{sum(params['sample'].values()):,} sampled {unit}"
        elif params.get("train_size"):
            size = f"{params['train_size']:,} {unit}"
        else:
            size = f"every {unit[:-1]}"
        if model == "stance" and stance and "train" in stance:
            size += f" of the {stance['train']['n']:,} in the train split"
        parts.append(
            f"{what}: {size} x {params['epochs']} epochs in {train['runtime']:,.0f} s "
            f"({train['tokens_per_second']:,.0f} tokens/s, padding excluded)"
        )
    return (
        "Training in the committed run (parameters from `dvc.lock`, times from "
        f"`dvclive/*/metrics.json`): {'; '.join(parts)}; "
        f"torch threads: {', '.join(str(t) for t in sorted(threads))}.\n"
    )


def replace_block(
    document: str, block: str, where: str = "README", markers: tuple[str, str] = (START, END)
) -> str:
    """``document`` with the text between the markers (default: results) replaced by ``block``."""
    first, last = markers
    start, end = document.find(first), document.find(last)
    if (
        start < 0
        or end < 0
        or end < start
        or document.count(first) != 1
        or document.count(last) != 1
    ):
        raise ValueError(f"{where}: needs exactly one {first} followed by one {last}")
    return document[: start + len(first)] + "\n" + block + document[end:]


def command(
    metrics: Annotated[Path, typer.Argument(help="metrics folder written by evaluate")],
    readme: Annotated[Path, typer.Argument(help="markdown file with the results markers")] = Path(
        "README.md"
    ),
    lock: Annotated[Path, typer.Option(help="dvc.lock of the run (training parameters)")] = Path(
        "dvc.lock"
    ),
    dvclive: Annotated[
        Path, typer.Option(help="DVCLive folder of the run (training times)")
    ] = Path("dvclive"),
) -> None:
    """Regenerate the README results section (and training paragraph) from the recorded files."""
    try:
        text = replace_block(
            readme.read_text(encoding="utf-8"), render_from_dir(metrics), str(readme)
        )
        if TRAINING_START in text:
            stance = json.loads((metrics / "stance.json").read_text(encoding="utf-8"))
            text = replace_block(
                text,
                training_summary(lock, dvclive, stance),
                str(readme),
                (TRAINING_START, TRAINING_END),
            )
    except (FileNotFoundError, ValueError, KeyError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=1) from e
    write_text(readme, text)  # a temporary file renamed over the README (keeps its mode)
    typer.echo(f"{readme}: results section regenerated from {metrics}")


if __name__ == "__main__":
    typer.run(command)
