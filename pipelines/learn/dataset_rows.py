"""The row layout of the two datasets: written by ``build_dataset``, read by the trainers and
``evaluate``. Each layout is declared once here (:data:`STANCE_COLUMNS`, :data:`TAGGER_COLUMNS`);
rows, Hugging Face ``Features`` and the readers follow from it.

* stance rows: one (claim, context, source) pair with its ``stance`` (a ClassLabel over
  asserts, denies, unconfirmed, unrelated), the ``group`` that must not straddle two splits, the
  input file it came from (``subset``), its ``origin``, the ``annotator`` (None for FNC-1 and
  Emergent pairs) and whether it was ``generated`` by the project (counterfactual cue swaps,
  :mod:`pipelines.learn.counterfactual`) rather than annotated.
* tagger rows: one article as one annotator marked it: ``text`` and parallel
  ``span_starts``/``span_ends``/``span_labels`` (Python code points); ``primary`` marks the one
  annotator per article used for training and scoring.

Heavy libraries (datasets) are imported inside functions only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.core.document import (
    PAIR_STANCES,
    AnnotationSet,
    Document,
    Relation,
    Span,
    StancePair,
)

# column -> kind (see _features); the order is the order of the columns in the saved dataset
STANCE_COLUMNS: dict[str, str] = {
    "id": "string",
    "claim": "string",
    "context": "string",
    "source": "string",
    "stance": "stance",
    "group": "string",
    "subset": "string",
    "origin": "string",
    "annotator": "string",
    "generated": "bool",
}
TAGGER_COLUMNS: dict[str, str] = {
    "id": "string",
    "group": "string",
    "subset": "string",
    "origin": "string",
    "annotator": "string",
    "primary": "bool",
    "text": "string",
    "span_starts": "int32 list",
    "span_ends": "int32 list",
    "span_labels": "string list",
    "relation_sources": "int32 list",  # index into the span lists
    "relation_claims": "int32 list",
    "relation_stances": "string list",
}


BUILD_PARAMS_FILE = "build_params.json"  # beside each dataset: what trainers must reproduce
GENERATED = "generated"  # origin prefix of examples made by the project, not annotated
REBUTTAL_ORIGIN = (
    f"{GENERATED}:rebuttal:"  # generated two-source passages (build_dataset.rebuttal_pairs)
)


def stance_row(
    pair: StancePair, subset: str, annotator: str | None, generated: bool = False
) -> dict[str, Any]:
    """One stance row; ``generated`` marks a made example (training splits only)."""
    return {
        "id": pair.id,
        "claim": pair.claim,
        "context": pair.context,
        "source": pair.source,
        "stance": pair.stance,
        "group": pair.group,
        "subset": subset,
        "origin": pair.origin,
        "annotator": annotator,
        "generated": generated,
    }


def tagger_row(doc: Document, ann: AnnotationSet, subset: str, primary: bool) -> dict[str, Any]:
    spans = sorted(ann.spans, key=lambda s: (s.start, s.end, s.label))
    index = {s.id: i for i, s in enumerate(spans)}
    return {
        "id": f"{doc.article.id}:{ann.annotator}",
        "group": doc.article.id,
        "subset": subset,
        "origin": ann.origin or subset,
        "annotator": ann.annotator,
        "primary": primary,
        "text": doc.article.text,
        "span_starts": [s.start for s in spans],
        "span_ends": [s.end for s in spans],
        "span_labels": [s.label for s in spans],
        "relation_sources": [index[r.source] for r in ann.relations],
        "relation_claims": [index[r.claim] for r in ann.relations],
        "relation_stances": [r.stance for r in ann.relations],
    }


def _features(columns: dict[str, str]) -> Any:
    from datasets import ClassLabel, Features, List, Value

    # a new object per column: the dataset fingerprint hashes them, and shared ones hash otherwise
    kinds = {
        "string": lambda: Value("string"),
        "bool": lambda: Value("bool"),
        "int32 list": lambda: List(Value("int32")),
        "string list": lambda: List(Value("string")),
        "stance": lambda: ClassLabel(names=list(PAIR_STANCES)),
    }
    return Features({name: kinds[kind]() for name, kind in columns.items()})


def stance_features() -> Any:
    return _features(STANCE_COLUMNS)


def tagger_features() -> Any:
    return _features(TAGGER_COLUMNS)


def to_dataset_dict(splits: dict[str, list[dict[str, Any]]], features: Any) -> Any:
    """A ``DatasetDict`` of ``{split: rows}`` with the given features (the column order)."""
    from datasets import Dataset, DatasetDict

    return DatasetDict(
        {
            name: Dataset.from_dict({k: [r[k] for r in rows] for k in features}, features=features)
            for name, rows in splits.items()
        }
    )


def stance_pairs(ds: Any) -> list[StancePair]:
    """The rows of a stance ``Dataset`` as StancePairs (stance names, not ids)."""
    names = ds.features["stance"].names
    keys = ["id", "claim", "context", "stance", "group", "origin", "source"]
    cols = ds.select_columns(keys).to_dict()  # whole Arrow columns: ds[k] reads row by row
    return [
        StancePair(id=i, claim=c, context=x, stance=names[y], group=g, origin=o, source=s)
        for i, c, x, y, g, o, s in zip(*cols.values(), strict=True)
    ]


@dataclass(frozen=True)
class GoldDocument:
    """One primary-annotator row of a tagger dataset: the text, its spans and its relations."""

    id: str
    text: str
    spans: list[Span]
    relations: list[Relation]


def primary_documents(ds: Any) -> list[GoldDocument]:
    """The primary-annotator rows of a tagger ``Dataset`` (spans get ids ``g<index>``)."""
    out = []
    for row in ds:
        if not row["primary"]:
            continue
        text = row["text"]
        spans = [
            Span(id=f"g{k}", label=label, start=a, end=b, text=text[a:b])
            for k, (a, b, label) in enumerate(
                zip(row["span_starts"], row["span_ends"], row["span_labels"], strict=True)
            )
        ]
        relations = [
            Relation(f"g{s}", f"g{c}", stance)
            for s, c, stance in zip(
                row["relation_sources"], row["relation_claims"], row["relation_stances"],
                strict=True,
            )
        ]  # fmt: skip
        out.append(GoldDocument(row["id"], text, spans, relations))
    return out


def read_build_params(dataset_dir: Path) -> dict[str, Any]:
    """The build_dataset parameters saved beside a dataset (e.g. the stance ``context_chars``
    that inference must reproduce)."""
    path = dataset_dir / BUILD_PARAMS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; rebuild the dataset (dvc repro build_dataset)")
    return json.loads(path.read_text(encoding="utf-8"))
