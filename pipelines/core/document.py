"""The one in-memory model of an annotated news document, used by every stage.

Offsets are Python code points into ``Article.text``; conversion to other units (Label Studio,
tokenizers) happens at those boundaries only. Every span carries its text so that a shifted
offset is caught (``validate``) instead of silently re-anchored.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from pipelines.core.io import PathLike, read_jsonl, read_records, write_jsonl

LABELS: tuple[str, ...] = ("Claim", "Source", "Denial")
STANCES: tuple[str, ...] = ("asserts", "denies", "unconfirmed")
PAIR_STANCES: tuple[str, ...] = (*STANCES, "unrelated")
PROVENANCES: tuple[str, ...] = ("gold", "silver", "prediction")


class DocumentError(ValueError):
    """Invalid document content; the message names the document (and span) at fault."""

    def __init__(self, doc_id: str, message: str, span_id: str | None = None):
        where = f"document {doc_id!r}" + (f", span {span_id!r}" if span_id else "")
        super().__init__(f"{where}: {message}")
        self.doc_id = doc_id
        self.span_id = span_id


def normalise_text(text: str) -> str:
    """Content key for de-duplication: NFC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def article_id(text: str) -> str:
    """Id derived from the content, for corpora whose articles have no other identity."""
    return hashlib.sha256(normalise_text(text).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def origin_id(origin: str) -> str:
    """Id derived from where an article came from (``file:``, ``url:``): an edit keeps it."""
    return hashlib.sha256(origin.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def text_version(text: str) -> str:
    """Hash of the exact text (no normalisation): any edit changes it."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class Article:
    """A news article. ``id`` is its identity, from ``origin`` where it has one (``file:<path
    under its input folder>``, ``url:<url>`` or ``id:<given id>``): an edited article keeps its
    id and gets a new :attr:`version`, so its old Label Studio task becomes stale instead of a
    second live task, and both versions fall in the same dataset split."""

    id: str
    text: str
    title: str | None = None
    publisher: str | None = None
    date: str | None = None
    url: str | None = None
    origin: str | None = None

    @classmethod
    def from_text(cls, text: str, **meta: str | None) -> Article:
        return cls(id=article_id(text), text=text, **meta)

    @classmethod
    def from_origin(cls, origin: str, text: str, **meta: str | None) -> Article:
        """``id:<given>`` keeps the given id as is; other origins are hashed."""
        given = origin.removeprefix("id:")
        return cls(
            id=given if given != origin else origin_id(origin), text=text, origin=origin, **meta
        )

    @property
    def version(self) -> str:
        return text_version(self.text)

    @property
    def heading(self) -> str:
        """What an annotator sees above the text: the title, else the file name or URL."""
        if self.title:
            return self.title
        if self.origin:
            kind, _, where = self.origin.partition(":")
            return where.rsplit("/", 1)[-1] if kind == "file" else where
        return self.id


@dataclass(frozen=True)
class Span:
    id: str
    label: str
    start: int
    end: int
    text: str
    score: float | None = None


@dataclass(frozen=True)
class Relation:
    """A Source span linked to the Claim span it speaks about, with its stance.

    ``cue`` keeps the attribution cue's text (e.g. "said", "denied") when the data has one.
    """

    source: str
    claim: str
    stance: str
    cue: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class AnnotationSet:
    """One annotator's (or one model's) spans and relations on one article.

    ``origin`` says where it came from (e.g. ``label-studio:task=12,annotation=34`` or
    ``polnear:<file>.ann``) so every annotation can be traced back to the users' work.
    """

    annotator: str
    provenance: str
    spans: tuple[Span, ...] = ()
    relations: tuple[Relation, ...] = ()
    created_at: str | None = None
    origin: str | None = None
    model_version: str | None = None


@dataclass(frozen=True)
class Document:
    article: Article
    annotations: tuple[AnnotationSet, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Document:
        annotations = tuple(
            AnnotationSet(
                **{
                    **a,
                    "spans": tuple(Span(**s) for s in a.get("spans", ())),
                    "relations": tuple(Relation(**r) for r in a.get("relations", ())),
                }
            )
            for a in data.get("annotations", ())
        )
        return cls(article=Article(**data["article"]), annotations=annotations)


@dataclass(frozen=True)
class StancePair:
    """A (claim, context[, source]) pair with a stance, e.g. an FNC-1 headline/body pair.

    ``group`` is the unit that must never straddle two splits (the article or body id).
    """

    id: str
    claim: str
    context: str
    stance: str
    group: str
    origin: str
    source: str | None = None


def validate(doc: Document) -> Document:
    """Check every invariant of ``doc``; raise :class:`DocumentError` naming the culprit."""
    text = doc.article.text
    if not doc.article.id:
        raise DocumentError("", "article has no id")
    _check_unicode(doc.article.id, "article text", text)
    for ann in doc.annotations:
        if ann.provenance not in PROVENANCES:
            raise DocumentError(
                doc.article.id,
                f"annotator {ann.annotator!r}: provenance {ann.provenance!r} not in {PROVENANCES}",
            )
        ids: set[str] = set()
        labels: dict[str, str] = {}
        for span in ann.spans:
            if span.id in ids:
                raise DocumentError(
                    doc.article.id, f"duplicate span id (annotator {ann.annotator!r})", span.id
                )
            ids.add(span.id)
            labels[span.id] = span.label
            if span.label not in LABELS:
                raise DocumentError(
                    doc.article.id, f"label {span.label!r} not in {LABELS}", span.id
                )
            if not 0 <= span.start < span.end <= len(text):
                raise DocumentError(
                    doc.article.id,
                    f"offsets [{span.start}, {span.end}) outside the text (length {len(text)})",
                    span.id,
                )
            if text[span.start : span.end] != span.text:
                raise DocumentError(
                    doc.article.id,
                    f"text at [{span.start}, {span.end}) is {text[span.start : span.end]!r}, span says {span.text!r}",
                    span.id,
                )
        for rel in ann.relations:
            if rel.stance not in STANCES:
                raise DocumentError(
                    doc.article.id, f"stance {rel.stance!r} not in {STANCES}", rel.source
                )
            for end, want in ((rel.source, ("Source",)), (rel.claim, ("Claim",))):
                if end not in labels:
                    raise DocumentError(
                        doc.article.id, "relation names a span that does not exist", end
                    )
                if labels[end] not in want:
                    raise DocumentError(
                        doc.article.id, f"relation end is a {labels[end]}, expected {want[0]}", end
                    )
    return doc


def _check_unicode(doc_id: str, what: str, text: str) -> None:
    """Reject lone surrogates (e.g. from a ``"\\ud800"`` JSON escape): they cannot be written as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise DocumentError(
            doc_id, f"{what} is not valid Unicode: lone surrogate at offset {e.start}"
        ) from None


def validate_pair(pair: StancePair) -> StancePair:
    for what in ("claim", "context"):
        _check_unicode(pair.id, what, getattr(pair, what))
    if pair.stance not in PAIR_STANCES:
        raise DocumentError(pair.id, f"stance {pair.stance!r} not in {PAIR_STANCES}")
    if not pair.claim.strip() or not pair.context.strip():
        raise DocumentError(pair.id, "empty claim or context")
    if pair.source is not None and pair.source not in pair.context:
        raise DocumentError(pair.id, f"source {pair.source!r} is not a substring of the context")
    return pair


# --- JSONL files of documents, articles and pairs ----------------------------------------------


def write_documents(path: PathLike, docs: Iterable[Document]) -> int:
    return write_jsonl(path, (validate(d).to_json() for d in docs))


DOCUMENTS_JSONL = "a documents line ({'article': {...}, 'annotations': [...]}, as `claimtrace studio pull` writes)"


def read_documents(path: PathLike) -> Iterator[Document]:
    for doc in read_records(path, Document.from_json, DOCUMENTS_JSONL):
        yield validate(doc)


def write_articles(path: PathLike, articles: Iterable[Article]) -> int:
    return write_jsonl(path, (asdict(a) for a in articles))


def read_articles(path: PathLike) -> Iterator[Article]:
    for rec in read_jsonl(path):
        yield Article(**rec)


def write_pairs(path: PathLike, pairs: Iterable[StancePair]) -> int:
    return write_jsonl(path, (asdict(validate_pair(p)) for p in pairs))


def read_pairs(path: PathLike) -> Iterator[StancePair]:
    for rec in read_jsonl(path):
        yield validate_pair(StancePair(**rec))
