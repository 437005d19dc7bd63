"""FNC-1 headline/body stance pairs -> StancePairs (claim = headline, context = body).

Row order is kept and ids are ``fnc1:<split>:<row>`` (row = 0-based data row), because the
anchor systems' predictions (fnc1/anchors/) are row-aligned with competition_test_stances.csv.
The competition test split is for evaluation only; nothing here mixes it into training.

A pair's ``group`` is its *story* (:func:`story_groups`), not its body: FNC-1 pairs each
headline with many bodies, and the competition test's stories are new (10 of its 894
headlines occur in train). Split by body, a validation body's headlines were all trained on,
so validation overstated the model (related 3-way .64 on validation against .506 on test).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipelines.core.document import StancePair, normalise_text, validate_pair
from pipelines.sources.corpora import MIRROR_ENV, CorpusError

FILES: dict[str, tuple[str, str]] = {
    "train": ("train_stances.csv", "train_bodies.csv"),
    "test": ("competition_test_stances.csv", "competition_test_bodies.csv"),
}
STANCE_MAP: dict[str, str] = {
    "agree": "asserts",
    "disagree": "denies",
    "discuss": "unconfirmed",
    "unrelated": "unrelated",
}
FNC_LABELS: tuple[str, ...] = tuple(STANCE_MAP)  # agree, disagree, discuss, unrelated


def _rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(row number, row) from a CSV with a header; bodies contain newlines and quotes."""
    if not path.is_file():
        raise CorpusError(f"{path}: missing (run `fetch` or set CLAIMTRACE_DATA_MIRROR)")
    with open(path, encoding="utf-8", newline="") as f:
        try:
            reader = csv.DictReader(f)
            missing = [c for c in columns if c not in (reader.fieldnames or ())]
            if missing:
                raise CorpusError(f"{path}: missing columns {missing} (has {reader.fieldnames})")
            for i, row in enumerate(reader):
                empty = [c for c in columns if not (row.get(c) or "").strip()]
                if empty:
                    raise CorpusError(f"{path}: row {i + 1}: empty {empty}")
                yield i, row
        except UnicodeDecodeError as e:
            raise CorpusError(f"{path}: not UTF-8 ({e.reason}); re-fetch the corpus") from e
        except csv.Error as e:
            raise CorpusError(f"{path}: line {reader.line_num}: not valid CSV ({e})") from e


def read_bodies(path: Path) -> dict[str, str]:
    bodies: dict[str, str] = {}
    for i, row in _rows(path, ("Body ID", "articleBody")):
        if row["Body ID"] in bodies:
            raise CorpusError(f"{path}: row {i + 1}: Body ID {row['Body ID']} appears twice")
        bodies[row["Body ID"]] = row["articleBody"]
    return bodies


def story_groups(pairs: Sequence[tuple[str, str, str]]) -> dict[str, str]:
    """Body ID -> ``fnc1:story:<lowest Body ID of its story>`` from ``(headline, Body ID,
    stance)`` rows: bodies that share a headline through a *related* pair are one story (the
    connected components of the headline-body graph). Unrelated pairs are random pairings
    across stories and link nothing; a body without related pairs is a story of its own."""
    parent: dict[str, str] = {}

    def root(node: str) -> str:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for headline, body_id, stance in pairs:
        root(f"b:{body_id}")
        if stance != "unrelated":
            parent[root(f"h:{headline}")] = root(f"b:{body_id}")
    members: dict[str, list[str]] = {}
    for node in parent:
        if node.startswith("b:"):
            members.setdefault(root(node), []).append(node[2:])
    key = lambda body: (len(body), body)  # noqa: E731 - numeric order for numeric ids
    return {b: f"fnc1:story:{min(bodies, key=key)}" for bodies in members.values() for b in bodies}


def load_fnc1(root: str | Path, split: str) -> Iterator[StancePair]:
    """Yield the pairs of ``split`` (train|test) in file order; ``root`` is the fnc1/ folder.

    An unknown stance label or a Body ID without a body raises :class:`CorpusError` naming the
    file and row (1-based data row, header excluded).
    """
    if split not in FILES:
        raise ValueError(f"FNC-1 split {split!r} not in {sorted(FILES)}")
    root = Path(root)
    stances_file, bodies_file = (root / name for name in FILES[split])
    bodies = read_bodies(bodies_file)
    # read whole first: a pair's story depends on later rows
    rows = list(_rows(stances_file, ("Headline", "Body ID", "Stance")))
    for i, row in rows:
        label, body_id = row["Stance"], row["Body ID"]
        if label not in STANCE_MAP:
            raise CorpusError(
                f"{stances_file}: row {i + 1}: unknown stance {label!r} (expected {sorted(STANCE_MAP)})"
            )
        if body_id not in bodies:
            raise CorpusError(
                f"{stances_file}: row {i + 1}: Body ID {body_id!r} has no body in {bodies_file}"
            )
    story = story_groups([(r["Headline"], r["Body ID"], r["Stance"]) for _, r in rows])
    for i, row in rows:
        yield validate_pair(
            StancePair(
                id=f"fnc1:{split}:{i}",
                claim=row["Headline"],
                context=bodies[row["Body ID"]],
                stance=STANCE_MAP[row["Stance"]],
                group=story[row["Body ID"]],
                origin=f"fnc1:{stances_file.name}:row={i + 1}",
            )
        )


# --- submissions: the FNC-1 anchors' predictions, row-aligned with the competition test set ---


@dataclass(frozen=True)
class FncRow:
    headline: str
    body_id: str
    stance: str


def read_fnc_submission(path: str | os.PathLike[str]) -> list[FncRow]:
    """Rows of an FNC-1 stances/submission CSV (``Headline, Body ID, Stance``), in file order."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"Headline", "Body ID", "Stance"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        rows = [FncRow(r["Headline"], r["Body ID"], r["Stance"]) for r in reader]
    for i, row in enumerate(rows, 1):
        if row.stance not in FNC_LABELS:
            raise ValueError(f"{path}: data row {i}: stance {row.stance!r} not in {FNC_LABELS}")
    return rows


def anchor_predictions(
    rows: Sequence[FncRow], pairs: Sequence[StancePair], path: Path
) -> list[str]:
    """A submission's labels for FNC-1 test ``pairs``, found by their row (ids ``fnc1:test:<row>``).

    Every headline is checked against the submission's row, so a mis-aligned file is an error
    rather than silently wrong scores.
    """
    out = []
    for pair in pairs:
        prefix, _, row_no = pair.id.rpartition(":")
        if prefix != "fnc1:test" or not row_no.isdigit() or int(row_no) >= len(rows):
            raise ValueError(
                f"{path}: test pair {pair.id!r} has no row in the submission ({len(rows)} rows)"
            )
        row = rows[int(row_no)]
        if normalise_text(row.headline) != normalise_text(pair.claim):
            raise ValueError(
                f"{path}: data row {int(row_no) + 1} headline {row.headline[:60]!r} does not match test pair {pair.id!r} "
                f"({pair.claim[:60]!r}); the submission must be row-aligned with competition_test_stances.csv"
            )
        out.append(STANCE_MAP[row.stance])
    return out


def find_anchors_dir(configured: str) -> Path | None:
    """The configured folder (``fetch`` output), else the mirror's ``fnc1/anchors``."""
    candidates = [Path(configured)]
    if os.environ.get(MIRROR_ENV):
        candidates.append(Path(os.environ[MIRROR_ENV]) / "fnc1" / "anchors")
    return next((p for p in candidates if p.is_dir()), None)
