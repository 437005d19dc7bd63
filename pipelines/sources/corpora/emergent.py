"""Emergent claim/article-headline stance pairs -> StancePairs, de-duplicated against FNC-1.

FNC-1 was built from Emergent, so an Emergent article headline that is also an FNC-1 headline
would put the same item on both sides of a train/evaluation split: :func:`remove_overlap` drops
those (compared after :func:`~pipelines.core.document.normalise_text`) and says how many.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipelines.core.document import StancePair, normalise_text, validate_pair
from pipelines.sources.corpora import CorpusError

FILES: dict[str, str] = {
    "train": "url-versions-2015-06-14-clean-train.csv",
    "test": "url-versions-2015-06-14-clean-test.csv",
}
STANCE_MAP: dict[str, str] = {
    "for": "asserts",
    "against": "denies",
    "observing": "unconfirmed",
}
COLUMNS = (
    "claimId",
    "claimHeadline",
    "articleHeadline",
    "articleHeadlineStance",
    "articleId",
)


def load_emergent(root: str | Path, split: str) -> Iterator[StancePair]:
    """Yield the pairs of ``split`` (train|test) in file order; ``root`` is the emergent/ folder.

    The id uses the file's own first column (the row's index in the unsplit file), so the same
    item has the same id in either split file.
    """
    if split not in FILES:
        raise ValueError(f"Emergent split {split!r} not in {sorted(FILES)}")
    path = Path(root) / FILES[split]
    if not path.is_file():
        raise CorpusError(f"{path}: missing (run `fetch` or set CLAIMTRACE_DATA_MIRROR)")
    with open(path, encoding="utf-8", newline="") as f:
        try:
            rows = list(_rows(path, csv.DictReader(f)))
        except UnicodeDecodeError as e:
            raise CorpusError(f"{path}: not UTF-8 ({e.reason}); re-fetch the corpus") from e
        except csv.Error as e:
            raise CorpusError(f"{path}: not valid CSV ({e})") from e
    for i, index, row in rows:
        yield validate_pair(
            StancePair(
                id=f"emergent:{index}",
                claim=row["claimHeadline"],
                context=row["articleHeadline"],
                stance=STANCE_MAP[row["articleHeadlineStance"]],
                group=f"emergent:claim:{row['claimId']}",
                origin=f"emergent:{path.name}:row={i + 1},article={row['articleId']}",
            )
        )


def _rows(path: Path, reader: csv.DictReader[str]) -> Iterator[tuple[int, str, dict[str, str]]]:
    """(row number, index column, row), each checked: known stance, no empty field."""
    fields = reader.fieldnames or []
    missing = [c for c in COLUMNS if c not in fields]
    if missing:
        raise CorpusError(f"{path}: missing columns {missing} (has {fields})")
    for i, row in enumerate(reader):
        label = row["articleHeadlineStance"]
        if label not in STANCE_MAP:
            raise CorpusError(
                f"{path}: row {i + 1}: unknown stance {label!r} (expected {sorted(STANCE_MAP)})"
            )
        empty = [c for c in COLUMNS if not (row.get(c) or "").strip()]
        if empty:
            raise CorpusError(f"{path}: row {i + 1}: empty {empty}")
        yield i, row[fields[0]] or str(i), row


def remove_overlap(
    emergent_pairs: Iterable[StancePair], fnc1_pairs: Iterable[StancePair]
) -> tuple[list[StancePair], list[StancePair]]:
    """(kept, removed): Emergent pairs whose article headline is also an FNC-1 headline go."""
    headlines = {normalise_text(p.claim) for p in fnc1_pairs}
    kept: list[StancePair] = []
    removed: list[StancePair] = []
    for pair in emergent_pairs:
        (removed if normalise_text(pair.context) in headlines else kept).append(pair)
    return kept, removed
