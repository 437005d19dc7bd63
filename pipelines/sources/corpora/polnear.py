"""PolNeAR (brat standoff attributions on political news) -> Documents with gold annotations.

Mapping, per attribution event ``E<id>``: ``Source`` -> Source span, ``Content``/``Content<n>``
-> Claim span, ``Cue`` -> ``Relation.cue`` text. A cue the lexicon reads as a denial or a refusal
to confirm also becomes a Denial span at the cue's offsets and sets the relation's stance; every
other cue asserts. A bare "declined"/"refused" cue is read together with the first words of its
content ("declined" + "to comment ..."), as PolNeAR annotates the infinitive as the content.

Discontinuous spans become one Span per fragment (``T12.1``, ``T12.2``), each linked by its own
Relation. ``Discard``/``Discuss`` text-bounds (annotators' flags) and ``#`` notes are not part of
the model; they are counted in :class:`PolnearReport`. Spans whose text does not match the
article at their offsets are left out and reported as :class:`SpanProblem` (never re-anchored).
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

from pipelines.core.document import (
    AnnotationSet,
    Article,
    Document,
    Relation,
    Span,
    validate,
)
from pipelines.core.lexicon import ASSERTS, cue_stance
from pipelines.core.stagelog import log
from pipelines.sources.corpora import CorpusError

SPLITS: tuple[str, ...] = ("train", "dev", "test")
_ID_LINE = re.compile(r"^[TERANM#]\d*\t")
_T_LINE = re.compile(r"^(T\d+)\t(\S+) (\d+ \d+(?:;\d+ \d+)*)\t(.*)$", re.DOTALL)
_E_LINE = re.compile(r"^(E\d+)\t(.*)$")
_ARG = re.compile(r"^([A-Za-z-]+?)\d*:([TE]\d+)$")
_ROLE_LABEL = {"Source": "Source", "Content": "Claim"}
_TRIGGERS = frozenset({"Attribution", "Attribution-no-source"})


@dataclass(frozen=True)
class TextBound:
    id: str
    role: str
    fragments: tuple[tuple[int, int], ...]
    text: str
    line: int

    def expected_length(self) -> int:
        """brat joins the fragments' texts with one space."""
        return sum(e - s for s, e in self.fragments) + len(self.fragments) - 1


@dataclass(frozen=True)
class Event:
    id: str
    args: tuple[tuple[str, str], ...]  # (role without its number suffix, T id)
    line: int


@dataclass(frozen=True)
class SpanProblem:
    """A fragment whose annotated text differs from the article at its offsets (left out)."""

    file: str
    tid: str
    line: int
    start: int
    end: int
    expected: str
    found: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: {self.tid} [{self.start}, {self.end}) annotated as "
            f"{self.expected!r} but the article has {self.found!r}; span left out"
        )


@dataclass(frozen=True)
class ArgumentProblem:
    """An event argument whose role differs from its text-bound's own role (argument unused)."""

    file: str
    line: int
    event: str
    role: str
    tid: str
    tid_role: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}: {self.event} names {self.role}:{self.tid}, but {self.tid} is "
            f"annotated as {self.tid_role}; this argument is left out of the event's relations"
        )


@dataclass
class PolnearReport:
    """What an import kept out of the documents, with counts, for ``report.json``."""

    problems: list[SpanProblem] = field(default_factory=list)
    argument_problems: list[ArgumentProblem] = field(default_factory=list)
    ignored_roles: Counter[str] = field(default_factory=Counter)
    notes: int = 0
    merged_duplicates: int = 0
    annotation_sets: int = 0
    stances: Counter[str] = field(default_factory=Counter)
    merged_articles: list[str] = field(default_factory=list)
    spans: int = 0
    relations: int = 0


def read_text(path: str | Path, encoding: str = "utf-8") -> str:
    """The file's text, newlines untouched (offsets count them); undecodable bytes -> CorpusError."""
    try:
        with open(path, encoding=encoding, newline="") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise CorpusError(
            f"{path}: not UTF-8 at byte {e.start} ({e.reason}); re-fetch the corpus"
        ) from e


def parse_ann(path: str | Path) -> tuple[dict[str, TextBound], list[Event], int]:
    """Parse one brat .ann file into text-bounds, events and the number of ``#`` notes.

    A text-bound whose text contains line breaks continues on the following lines; any other
    line that is not a brat record raises :class:`CorpusError` naming the file and line.
    """
    bounds: dict[str, TextBound] = {}
    events: list[Event] = []
    notes = 0
    last: TextBound | None = None
    lines = read_text(path, "utf-8-sig").split("\n")
    if lines and not lines[-1]:
        lines.pop()  # the file's final newline ends the last record; it is not a continuation
    for lineno, raw in enumerate(lines, 1):
        line = raw.removesuffix("\r")
        if (
            last is not None
            and len(last.text) < last.expected_length()
            and not _ID_LINE.match(line)
        ):
            last = TextBound(last.id, last.role, last.fragments, f"{last.text}\n{line}", last.line)
            bounds[last.id] = last
            continue
        last = None
        if not line.strip():
            continue
        if m := _T_LINE.match(line):
            frags = tuple(tuple(int(x) for x in part.split()) for part in m.group(3).split(";"))
            if m.group(1) in bounds:
                raise CorpusError(f"{path}:{lineno}: text-bound {m.group(1)} defined twice")
            last = TextBound(m.group(1), m.group(2), frags, m.group(4), lineno)  # type: ignore[arg-type]
            bounds[last.id] = last
        elif m := _E_LINE.match(line):
            args = []
            for arg in m.group(2).split():
                am = _ARG.match(arg)
                if am is None:
                    raise CorpusError(f"{path}:{lineno}: event argument {arg!r} is not Role:T<id>")
                args.append((am.group(1), am.group(2)))
            events.append(Event(m.group(1), tuple(args), lineno))
        elif line.startswith("#"):
            notes += 1
        else:
            raise CorpusError(
                f"{path}:{lineno}: malformed line {line[:80]!r}: expected 'T<id>\\t<Role> <start> <end>\\t<text>', "
                "'E<id>\\t<Role>:T<id> ...' or '#<id>\\t<note>'"
            )
    for ev in events:
        for role, tid in ev.args:
            if tid not in bounds:
                raise CorpusError(
                    f"{path}:{ev.line}: event {ev.id} names {role}:{tid}, which is not defined"
                )
    return bounds, events, notes


def _fragment_texts(tb: TextBound) -> list[str]:
    """The annotated text of each fragment (brat joins fragments with one space; the last one
    takes whatever is left, so a wrong length shows in full in the problem report)."""
    out, pos = [], 0
    for s, e in tb.fragments[:-1]:
        out.append(tb.text[pos : pos + max(e - s, 0)])
        pos += max(e - s, 0) + 1
    return [*out, tb.text[pos:]]


def _check_fragments(
    tb: TextBound, text: str, file: str, problems: list[SpanProblem]
) -> list[tuple[int, int, str]]:
    """The fragments of ``tb`` that match the article; the others are recorded as problems."""
    good = []
    for (s, e), expected in zip(tb.fragments, _fragment_texts(tb), strict=True):
        found = text[s:e] if 0 <= s <= e else ""  # past the end: the part that exists
        if 0 <= s < e <= len(text) and found == expected:
            good.append((s, e, found))
        else:
            problem = SpanProblem(file, tb.id, tb.line, s, e, expected, found)
            log.warning("%s", problem)
            problems.append(problem)
    return good


def polnear_stance(cue: str, content: str | None = None) -> str:
    """Stance of a PolNeAR cue; "declined"/"refused" + "to comment" reads the content's start."""
    stance = cue_stance(cue)
    if stance == ASSERTS and content and content.lstrip().lower().startswith("to "):
        stance = cue_stance(f"{cue} {' '.join(content.split()[:3])}")
    return stance


@dataclass
class _Conversion:
    """One .ann file being converted: its spans by (label, start, end), its relations."""

    bounds: dict[str, TextBound]
    text: str
    file: str
    report: PolnearReport
    spans: dict[tuple[str, int, int], Span] = field(default_factory=dict)
    good: dict[str, list[tuple[int, int, str]]] = field(default_factory=dict)  # matching fragments
    fragment_ids: dict[str, list[str]] = field(default_factory=dict)  # text-bound -> its span ids
    relations: dict[tuple[str, str], Relation] = field(default_factory=dict)
    cue_used: set[str] = field(default_factory=set)

    def add(self, label: str, tb: TextBound, frags: list[tuple[int, int, str]]) -> list[str]:
        """A span per fragment (one already there is reused); returns their ids."""
        ids = []
        for i, (s, e, t) in enumerate(frags, 1):
            key = (label, s, e)
            if key not in self.spans:
                sid = tb.id if len(tb.fragments) == 1 else f"{tb.id}.{i}"
                self.spans[key] = Span(
                    f"{sid}-denial" if label == "Denial" else sid, label, s, e, t
                )
            elif label != "Denial":
                # (a Denial seen twice is one cue shared by two events, not a duplicate)
                self.report.merged_duplicates += 1
            ids.append(self.spans[key].id)
        return ids

    def add_text_bounds(self) -> None:
        """Source and Content spans (fragments checked against the text); cues are kept aside."""
        for tb in self.bounds.values():
            if tb.role in _TRIGGERS:
                continue  # the event trigger repeats the cue's offsets; the cue is kept instead
            if tb.role not in _ROLE_LABEL and tb.role != "Cue":
                self.report.ignored_roles[tb.role] += 1
                continue
            self.good[tb.id] = _check_fragments(tb, self.text, self.file, self.report.problems)
            if tb.role in _ROLE_LABEL:
                self.fragment_ids[tb.id] = self.add(_ROLE_LABEL[tb.role], tb, self.good[tb.id])

    def _arguments(self, ev: Event) -> list[tuple[str, str]]:
        """The event's arguments whose role matches their text-bound; the others are problems."""
        args = []
        for role, tid in ev.args:
            found = self.bounds[tid].role
            if role == found or (role in _TRIGGERS and found in _TRIGGERS):
                args.append((role, tid))
            else:
                problem = ArgumentProblem(self.file, ev.line, ev.id, role, tid, found)
                log.warning("%s", problem)
                self.report.argument_problems.append(problem)
        return args

    def add_event(self, ev: Event) -> None:
        """Relations from every Source to every Content of an event, with the cue's stance; a
        denying cue also becomes a Denial span."""
        args = self._arguments(ev)
        ids = self.fragment_ids
        sources = [sid for role, tid in args if role == "Source" for sid in ids.get(tid, ())]
        claims = [sid for role, tid in args if role == "Content" for sid in ids.get(tid, ())]
        cue_ids = [tid for role, tid in args if role == "Cue"]
        contents = [self.bounds[tid].text for role, tid in args if role == "Content"]
        cue_text = " ".join(t for tid in cue_ids for _, _, t in self.good.get(tid, ())) or None
        stance = (
            polnear_stance(cue_text, contents[0] if contents else None) if cue_text else ASSERTS
        )
        if stance != ASSERTS:
            for tid in cue_ids:
                self.add("Denial", self.bounds[tid], self.good[tid])
        self.cue_used.update(cue_ids)
        for s, c in product(sources, claims):
            self.relations.setdefault((s, c), Relation(s, c, stance, cue_text))

    def add_stray_cues(self) -> None:
        """A cue outside any event still marks a denial if it is one."""
        for tid, frags in self.good.items():
            tb = self.bounds[tid]
            if tb.role == "Cue" and tid not in self.cue_used and cue_stance(tb.text) != ASSERTS:
                self.add("Denial", tb, frags)


def convert_ann(
    path: Path, text: str, annotator: str, origin: str, report: PolnearReport
) -> AnnotationSet:
    """One annotator's .ann file -> one gold AnnotationSet (spans checked against ``text``)."""
    bounds, events, notes = parse_ann(path)
    report.notes += notes
    conversion = _Conversion(bounds, text, str(path), report)
    conversion.add_text_bounds()
    for ev in events:
        conversion.add_event(ev)
    conversion.add_stray_cues()
    relations = conversion.relations
    ordered = tuple(sorted(conversion.spans.values(), key=lambda s: (s.start, s.end, s.label)))
    report.spans += len(ordered)
    report.relations += len(relations)
    report.annotation_sets += 1
    report.stances.update(r.stance for r in relations.values())
    return AnnotationSet(
        annotator=annotator,
        provenance="gold",
        spans=ordered,
        relations=tuple(relations.values()),
        origin=origin,
    )


def read_metadata(root: Path) -> dict[str, dict[str, str]]:
    """``data/metadata.tsv`` by article file name (title, publisher, date); empty if absent."""
    path = root / "data" / "metadata.tsv"
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8", newline="") as f:
        return {
            row["filename"]: row
            for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        }


def load_polnear(
    root: str | Path, split: str, report: PolnearReport | None = None
) -> Iterator[Document]:
    """Yield one Document per article of ``split``, one gold AnnotationSet per annotator file.

    ``root`` is the PolNeAR folder (holding ``data/<split>/{text,attributions}``). Problems and
    counts go to ``report`` when given (spans with problems are left out of the documents).
    Two files with the same text (PolNeAR has one story published on two dates) are one article:
    their annotation sets are merged into the first one's Document, and the merge is reported.
    """
    if split not in SPLITS:
        raise ValueError(f"PolNeAR split {split!r} not in {SPLITS}")
    root = Path(root)
    report = report if report is not None else PolnearReport()
    text_dir, ann_dir = (
        root / "data" / split / "text",
        root / "data" / split / "attributions",
    )
    if not text_dir.is_dir() or not ann_dir.is_dir():
        raise CorpusError(
            f"{root}: no PolNeAR {split} split here (expected {text_dir} and {ann_dir})"
        )
    ann_files: dict[str, list[Path]] = {}
    for path in sorted(ann_dir.glob("*.ann")):
        article, sep, _ = path.stem.rpartition("_")
        if not sep or not article:
            raise CorpusError(f"{path}: file name is not <article>_<annotator>.ann")
        ann_files.setdefault(article, []).append(path)
    orphans = sorted(set(ann_files) - {p.stem for p in text_dir.glob("*.txt")})
    if orphans:
        raise CorpusError(f"{ann_dir}: annotations without an article text: {orphans[:5]}")
    meta = read_metadata(root)
    docs: dict[str, Document] = {}
    first_file: dict[str, str] = {}
    for text_path in sorted(text_dir.glob("*.txt")):
        text = read_text(text_path)
        m = meta.get(text_path.stem, {})
        article = Article.from_text(
            text,
            title=m.get("title") or None,
            publisher=m.get("publisher") or None,
            date=m.get("publication_date") or None,
        )
        annotations = tuple(
            convert_ann(
                path,
                text,
                path.stem.rpartition("_")[2],
                f"polnear:{split}/{path.name}",
                report,
            )
            for path in ann_files.get(text_path.stem, ())
        )
        if article.id in docs:
            report.merged_articles.append(
                f"{split}/{text_path.stem} = {split}/{first_file[article.id]}"
            )
            article, annotations = (
                docs[article.id].article,
                docs[article.id].annotations + annotations,
            )
        else:
            first_file[article.id] = text_path.stem
        docs[article.id] = validate(Document(article, annotations))
    yield from docs.values()
