"""Stage ``convert``: the fetched public corpora -> Documents and StancePairs (``data/imported``).

Writes ``polnear/{train,dev,test}.jsonl`` (gold Documents), ``pairs/{fnc1_train,fnc1_test,
emergent_train,emergent_test}.jsonl`` and ``report.json`` (counts; every span left out, every
Emergent pair removed as an FNC-1 overlap). Emergent splits are de-duplicated against the FNC-1
splits named in ``convert.emergent_dedup`` (by default: Emergent test against FNC-1 train, which a
model may be trained on, and Emergent train against FNC-1 test, which is evaluation only), so no
item is on both sides of a train/evaluation boundary.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from tqdm import tqdm

from pipelines.core.document import StancePair, write_documents, write_pairs
from pipelines.core.io import write_json
from pipelines.core.params import ParamsError, load_section
from pipelines.core.stagelog import log, stage
from pipelines.sources.corpora import CorpusError
from pipelines.sources.corpora.emergent import load_emergent, remove_overlap
from pipelines.sources.corpora.fnc1 import load_fnc1
from pipelines.sources.corpora.polnear import SPLITS, PolnearReport, load_polnear

PAIR_SPLITS: tuple[str, ...] = ("train", "test")


@dataclass(frozen=True)
class ConvertParams:
    polnear_splits: tuple[str, ...]
    # Emergent split -> FNC-1 splits whose headlines it must not share
    emergent_dedup: dict[str, Any]
    # the import fails when more than this share of PolNeAR span fragments is left out
    max_span_problem_rate: float

    def validate(self) -> None:
        if not self.polnear_splits or set(self.polnear_splits) - set(SPLITS):
            raise ParamsError(
                f"convert.polnear_splits: {list(self.polnear_splits)} must be a non-empty subset of {SPLITS}"
            )
        for split, against in self.emergent_dedup.items():
            if (
                split not in PAIR_SPLITS
                or not isinstance(against, list)
                or set(against) - set(PAIR_SPLITS)
            ):
                raise ParamsError(
                    f"convert.emergent_dedup: {split!r}: {against!r}; expected an Emergent split "
                    f"{PAIR_SPLITS} mapped to a list of FNC-1 splits {PAIR_SPLITS}"
                )
        if not 0 <= self.max_span_problem_rate <= 1:
            raise ParamsError("convert.max_span_problem_rate must be in [0, 1]")


def convert_polnear(
    root: Path, out: Path, splits: tuple[str, ...], max_problem_rate: float
) -> dict[str, Any]:
    """Write ``out/polnear/<split>.jsonl`` for each split; return the PolNeAR part of the report."""
    result: dict[str, Any] = {"splits": {}}
    totals = PolnearReport()
    for split in splits:
        report = PolnearReport()
        docs = tqdm(
            load_polnear(root, split, report),
            desc=f"polnear {split}",
            unit="article",
            leave=False,
        )
        n = write_documents(out / "polnear" / f"{split}.jsonl", docs)
        result["splits"][split] = {
            "documents": n,
            "annotation_sets": report.annotation_sets,
            "spans": report.spans,
            "relations": report.relations,
            "stances": dict(report.stances),
            "span_problems": len(report.problems),
        }
        totals.problems += report.problems
        totals.argument_problems += report.argument_problems
        totals.ignored_roles.update(report.ignored_roles)
        totals.notes += report.notes
        totals.merged_duplicates += report.merged_duplicates
        totals.merged_articles += report.merged_articles
        totals.spans += report.spans
    fragments = totals.spans + totals.merged_duplicates + len(totals.problems)
    rate = len(totals.problems) / fragments if fragments else 0.0
    result.update(
        span_problem_rate=rate,
        span_problems=[asdict(p) | {"message": str(p)} for p in totals.problems],
        argument_problems=[asdict(p) | {"message": str(p)} for p in totals.argument_problems],
        ignored_roles=dict(totals.ignored_roles),
        annotator_notes_ignored=totals.notes,
        merged_duplicate_spans=totals.merged_duplicates,
        merged_articles=totals.merged_articles,
    )
    if rate > max_problem_rate:
        raise CorpusError(
            f"{root}: {len(totals.problems)} of {fragments} PolNeAR span fragments ({rate:.2%}) do not match their "
            f"article text (limit convert.max_span_problem_rate={max_problem_rate}); first: {totals.problems[0]}"
        )
    return result


def convert_pairs(root: Path, out: Path, dedup: dict[str, list[str]]) -> dict[str, Any]:
    """Write the four pair files; Emergent splits lose the items they share with FNC-1."""
    fnc1 = {
        split: list(
            tqdm(
                load_fnc1(root / "fnc1", split),
                desc=f"fnc1 {split}",
                unit="pair",
                leave=False,
            )
        )
        for split in PAIR_SPLITS
    }
    result: dict[str, Any] = {}
    for split, pairs in fnc1.items():
        result[f"fnc1_{split}"] = {
            "pairs": write_pairs(out / "pairs" / f"fnc1_{split}.jsonl", pairs),
            "stances": _stances(pairs),
        }
    for split in PAIR_SPLITS:
        pairs = list(load_emergent(root / "emergent", split))
        against = dedup.get(split, [])
        kept, removed = remove_overlap(pairs, [p for s in against for p in fnc1[s]])
        if removed:
            log.info(
                "emergent %s: removed %d of %d pairs whose headline is an FNC-1 %s headline",
                split,
                len(removed),
                len(pairs),
                "+".join(against),
            )
        result[f"emergent_{split}"] = {
            "read": len(pairs),
            "pairs": write_pairs(out / "pairs" / f"emergent_{split}.jsonl", kept),
            "stances": _stances(kept),
            "deduplicated_against": [f"fnc1_{s}" for s in against],
            "removed_overlap": len(removed),
            "removed_ids": [p.id for p in removed],
        }
    return result


def _stances(pairs: list[StancePair]) -> dict[str, int]:
    return dict(sorted(Counter(p.stance for p in pairs).items()))


def convert(raw: Path, out: Path, params: ConvertParams) -> dict[str, Any]:
    """Import everything from ``raw`` (mirror layout) into ``out``; write and return the report."""
    raw, out = Path(raw), Path(out)
    report = {
        "polnear": convert_polnear(
            raw / "polnear", out, params.polnear_splits, params.max_span_problem_rate
        ),
        "pairs": convert_pairs(raw, out, {k: list(v) for k, v in params.emergent_dedup.items()}),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", report, ensure_ascii=False, indent=1, sort_keys=True)
    return report


def command(
    raw: Annotated[
        Path,
        typer.Argument(help="Fetched corpora, e.g. data/raw (polnear/, fnc1/, emergent/)."),
    ],
    out: Annotated[Path, typer.Argument(help="Output folder, e.g. data/imported.")],
    params: Annotated[Path, typer.Option(help="Parameters file (section 'convert').")] = Path(
        "params.yaml"
    ),
) -> None:
    """Import PolNeAR (gold documents), FNC-1 and Emergent (stance pairs) into the document model."""
    p = load_section(ConvertParams, "convert", params)
    with stage("convert", fail_on=(CorpusError,)) as counts:
        report = convert(raw, out, p)
        pn = report["polnear"]
        counts["documents"] = sum(s["documents"] for s in pn["splits"].values())
        counts["spans"] = sum(s["spans"] for s in pn["splits"].values())
        counts["span_problems"] = len(pn["span_problems"])
        for name, r in report["pairs"].items():
            counts[name] = r["pairs"]
        counts["emergent_overlap_removed"] = sum(
            r.get("removed_overlap", 0) for r in report["pairs"].values()
        )


if __name__ == "__main__":
    typer.run(command)
