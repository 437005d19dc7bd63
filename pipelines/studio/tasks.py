"""Pure conversions between the document model and Label Studio task / prediction / annotation JSON.

Offsets: our spans use Python code points. Label Studio's ``<Text>`` tag stores ``start``/``end``
in :data:`LS_OFFSET_UNIT` (code points since label-studio-frontend#308; older releases used
JavaScript UTF-16 code units). Every crossing of that boundary goes through :func:`to_ls_offset`
and :func:`from_ls_offset`, so flipping the constant is the only change if the unit differs.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from pipelines.core.document import (
    LABELS,
    STANCES,
    AnnotationSet,
    Article,
    Document,
    DocumentError,
    Relation,
    Span,
    text_version,
    validate,
)
from pipelines.studio.labeling import LABELS_NAME, TEXT_NAME

OffsetUnit = Literal["codepoint", "utf16"]
LS_OFFSET_UNIT: OffsetUnit = "codepoint"

# task data keys (besides "text") that tie a task back to the corpus
ARTICLE_KEYS: tuple[str, ...] = ("title", "publisher", "date", "url", "origin")
HEADING_KEY = "heading"  # the title or file name, shown above the text (labeling.label_config)
# task data keys the loop writes for the Data Manager to sort by (push, pull)
UNCERTAINTY_KEY = "uncertainty"
AGREEMENT_KEY = "agreement"


# --- offsets -----------------------------------------------------------------------------------


def _utf16_len(s: str) -> int:
    return len(s.encode("utf-16-le")) // 2


def codepoint_to_utf16(text: str, index: int) -> int:
    return _utf16_len(text[:index])


def utf16_to_codepoint(text: str, unit_index: int) -> int:
    """Code-point index of a UTF-16 offset; raises ValueError if it points inside a surrogate pair."""
    units = 0
    for i, ch in enumerate(text):
        if units == unit_index:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > unit_index:
            raise ValueError(
                f"UTF-16 offset {unit_index} falls inside the surrogate pair of character {i}"
            )
    if units == unit_index:
        return len(text)
    raise ValueError(f"UTF-16 offset {unit_index} is past the end of the text ({units} units)")


def to_ls_offset(text: str, index: int, unit: OffsetUnit = LS_OFFSET_UNIT) -> int:
    return index if unit == "codepoint" else codepoint_to_utf16(text, index)


def from_ls_offset(text: str, offset: int, unit: OffsetUnit = LS_OFFSET_UNIT) -> int:
    if unit == "codepoint":
        if not 0 <= offset <= len(text):
            raise ValueError(f"offset {offset} outside the text (length {len(text)})")
        return offset
    return utf16_to_codepoint(text, offset)


def _other(unit: OffsetUnit) -> OffsetUnit:
    return "utf16" if unit == "codepoint" else "codepoint"


# --- push: corpus -> Label Studio --------------------------------------------------------------


def content_hash(text: str) -> str:
    """The task's article version: :func:`~pipelines.core.document.text_version`."""
    return text_version(text)


def annotation_to_result(
    text: str, ann: AnnotationSet, unit: OffsetUnit = LS_OFFSET_UNIT
) -> list[dict[str, Any]]:
    """Spans -> ``labels`` regions, relations -> ``relation`` items (region ids = our span ids)."""
    result: list[dict[str, Any]] = []
    for span in ann.spans:
        region: dict[str, Any] = {
            "id": span.id,
            "from_name": LABELS_NAME,
            "to_name": TEXT_NAME,
            "type": "labels",
            "value": {
                "start": to_ls_offset(text, span.start, unit),
                "end": to_ls_offset(text, span.end, unit),
                "text": span.text,
                "labels": [span.label],
            },
        }
        if span.score is not None:
            region["score"] = span.score
        result.append(region)
    for rel in ann.relations:
        result.append(
            {
                "type": "relation",
                "from_id": rel.source,
                "to_id": rel.claim,
                "direction": "right",
                "labels": [rel.stance],
            }
        )
    return result


def prediction_json(
    text: str, ann: AnnotationSet, model_version: str, unit: OffsetUnit = LS_OFFSET_UNIT
) -> dict[str, Any]:
    """A Label Studio prediction; its score is the mean span score (absent when no span has one)."""
    scores = [s.score for s in ann.spans if s.score is not None]
    pred: dict[str, Any] = {
        "model_version": model_version,
        "result": annotation_to_result(text, ann, unit),
    }
    if scores:
        pred["score"] = sum(scores) / len(scores)
    return pred


def uncertainty(ann: AnnotationSet) -> float | None:
    """How unsure the model is of its least confident region or relation: ``1 - min(score)``.

    The annotator's time is best spent where the model doubts most (uncertainty sampling);
    None when nothing in ``ann`` has a score (rules, or a model that found nothing).
    """
    scores = [x.score for x in (*ann.spans, *ann.relations) if x.score is not None]
    return round(1.0 - min(scores), 4) if scores else None


def article_to_task(
    article: Article,
    predictions: tuple[tuple[AnnotationSet, str], ...] = (),
    unit: OffsetUnit = LS_OFFSET_UNIT,
) -> dict[str, Any]:
    """Task JSON for the import API; ``predictions`` pairs each AnnotationSet with its model_version."""
    data: dict[str, Any] = {
        "text": article.text,
        "article_id": article.id,
        "content_hash": content_hash(article.text),
    }
    for key in ARTICLE_KEYS:
        data[key] = getattr(article, key)
    data[HEADING_KEY] = article.heading
    task: dict[str, Any] = {"data": data}
    if predictions:
        task["predictions"] = [
            prediction_json(article.text, ann, version, unit) for ann, version in predictions
        ]
    return task


# --- pull: Label Studio -> corpus --------------------------------------------------------------


@dataclass
class PullStats:
    """What the conversion met, so nothing is dropped silently (written to ``report.json``)."""

    counts: Counter[str] = field(default_factory=Counter)
    skipped: list[dict[str, Any]] = field(default_factory=list)


# The export is outside data: each field is checked for its JSON type before use, so a malformed
# task or annotation is a DocumentError naming the task and annotation, never a crash (or a drop).

_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
}


def _shape_error(doc_id: str, where: str, what: str, value: Any, expected: str) -> DocumentError:
    got = "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)
    return DocumentError(
        doc_id, f"{where}: {what} is {got}, expected {expected}; fix it in Label Studio"
    )


def _object(value: Any, what: str, doc_id: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _shape_error(doc_id, where, what, value, "an object")
    return value


def _array(value: Any, what: str, doc_id: str, where: str) -> list[Any]:
    """A list field; absent or null counts as empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _shape_error(doc_id, where, what, value, "an array")
    return value


def _integer(value: Any, what: str, doc_id: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _shape_error(doc_id, where, what, value, "an integer")
    return value


def _text(value: Any, what: str, doc_id: str, where: str) -> str:
    """A string that can be written as UTF-8 (a ``"\\ud800"`` JSON escape decodes to a lone surrogate)."""
    if not isinstance(value, str):
        raise _shape_error(doc_id, where, what, value, "a string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise DocumentError(
            doc_id,
            f"{where}: {what} is not valid Unicode text (lone surrogate at offset {e.start})",
        ) from None
    return value


def _optional_text(value: Any, what: str, doc_id: str, where: str) -> str | None:
    return None if value is None else _text(value, what, doc_id, where)


def _task_id(task: Any) -> int:
    if not isinstance(task, dict):
        raise _shape_error("", "export", "a task", task, "an object")
    return _integer(task.get("id"), "the task id", "", f"task {task.get('id')!r}")


def task_article(task: dict[str, Any]) -> Article:
    where = f"task {_task_id(task)}"
    data = _object(task.get("data"), "data", "", where)
    if "text" not in data or "article_id" not in data:
        raise DocumentError(
            str(data.get("article_id", "")),
            f"{where}: data has no 'text'/'article_id' (not pushed by claimtrace?)",
        )
    doc_id = _text(data["article_id"], "data.article_id", "", where)
    text = _text(data["text"], "data.text", doc_id, where)
    meta = {k: _optional_text(data.get(k), f"data.{k}", doc_id, where) for k in ARTICLE_KEYS}
    return Article(id=doc_id, text=text, **meta)


def _where(task_id: Any, ann_id: Any) -> str:
    return f"task {task_id}, annotation {ann_id}"


def region_to_span(
    text: str,
    region: dict[str, Any],
    where: str,
    doc_id: str,
    stats: PullStats,
    unit: OffsetUnit = LS_OFFSET_UNIT,
) -> Span:
    """One ``labels`` region -> Span; offsets converted once and checked against the region's text."""
    rid = _text(region.get("id"), "a region id", doc_id, where)
    here = f"{where}, region {rid!r}"
    value = _object(region.get("value", {}), "the region value", doc_id, here)
    labels = _array(value.get("labels"), "the region labels", doc_id, here)
    if len(labels) != 1 or labels[0] not in LABELS:
        raise DocumentError(
            doc_id, f"{where}: region has labels {labels!r}, expected exactly one of {LABELS}", rid
        )
    raw_start, raw_end = value.get("start"), value.get("end")
    if any(isinstance(v, bool) or not isinstance(v, int) for v in (raw_start, raw_end)):
        raise DocumentError(
            doc_id, f"{where}: region has non-integer offsets {raw_start!r}, {raw_end!r}", rid
        )
    want = _optional_text(value.get("text"), "the region text", doc_id, here)
    score = region.get("score")
    if score is not None and (
        isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score)
    ):
        raise DocumentError(doc_id, f"{where}: region score {score!r} is not a finite number", rid)
    tried = []
    for candidate in (unit, _other(unit)):
        try:
            start, end = (
                from_ls_offset(text, raw_start, candidate),
                from_ls_offset(text, raw_end, candidate),
            )
        except ValueError as e:
            tried.append(f"{candidate}: {e}")
            continue
        if want is None:
            # no stored text to check against (e.g. a region created through the API without it)
            stats.counts["spans_without_text"] += 1
            want = text[start:end]
        if text[start:end] == want:
            if candidate != unit:
                stats.counts[f"spans_{candidate}_offsets"] += 1
            return Span(id=rid, label=labels[0], start=start, end=end, text=want, score=score)
        tried.append(f"{candidate}: text there is {text[start:end]!r}")
    raise DocumentError(
        doc_id,
        f"{where}: offsets [{raw_start}, {raw_end}) do not match the region text {want!r} "
        f"({'; '.join(tried)}); fix the region in Label Studio",
        rid,
    )


def result_to_annotation(
    task: dict[str, Any],
    annotation: dict[str, Any],
    annotator: str,
    stats: PullStats,
    unit: OffsetUnit = LS_OFFSET_UNIT,
) -> AnnotationSet:
    """One Label Studio annotation -> one gold AnnotationSet (validated)."""
    article = task_article(task)
    where = _where(task["id"], annotation.get("id"))
    items = [
        _object(item, f"result item {i}", article.id, where)
        for i, item in enumerate(_array(annotation.get("result"), "result", article.id, where))
    ]
    created_at = _optional_text(annotation.get("created_at"), "created_at", article.id, where)
    spans: list[Span] = []
    relations: list[Relation] = []
    for item in items:
        kind = item.get("type")
        if kind == "labels" and item.get("from_name") == LABELS_NAME:
            spans.append(region_to_span(article.text, item, where, article.id, stats, unit))
        elif kind != "relation":
            raise DocumentError(
                article.id,
                f"{where}: unexpected result item type {kind!r} from {item.get('from_name')!r}",
            )
    by_id = {s.id: s for s in spans}
    for item in items:
        if item.get("type") != "relation":
            continue
        a, b = (
            _text(item.get(k), f"relation {k}", article.id, where) for k in ("from_id", "to_id")
        )
        labels = _array(item.get("labels"), f"relation {a} -> {b} labels", article.id, where)
        if len(labels) != 1 or labels[0] not in STANCES:
            raise DocumentError(
                article.id,
                f"{where}: relation {a} -> {b} has labels {labels!r}, expected exactly one of {STANCES}",
            )
        ends = (by_id.get(a), by_id.get(b))
        if None in ends:
            raise DocumentError(
                article.id, f"{where}: relation {a} -> {b} names a region that does not exist"
            )
        kinds = (ends[0].label, ends[1].label)  # type: ignore[union-attr]
        if kinds == ("Claim", "Source"):
            # the link is drawn either way in the UI; its meaning is always Source -> Claim
            a, b = b, a
            stats.counts["relations_drawn_claim_to_source"] += 1
        elif kinds != ("Source", "Claim"):
            raise DocumentError(
                article.id,
                f"{where}: relation {a} -> {b} links {kinds[0]} to {kinds[1]}; only Source -> Claim is allowed",
            )
        relations.append(Relation(source=a, claim=b, stance=labels[0]))
    ann = AnnotationSet(
        annotator=annotator,
        provenance="gold",
        spans=tuple(spans),
        relations=tuple(relations),
        created_at=created_at,
        origin=f"label-studio:task={task['id']},annotation={annotation.get('id')}",
    )
    validate(Document(article, (ann,)))
    return ann


def _completed_by(value: Any, doc_id: str, where: str) -> Any:
    """The annotating user as exported: a user id, or a user object with an ``id`` (and ``email``)."""
    if isinstance(value, dict):
        _integer(value.get("id"), "completed_by.id", doc_id, where)
        _optional_text(value.get("email"), "completed_by.email", doc_id, where)
        return value
    return _integer(value, "completed_by", doc_id, where)


def annotator_name(completed_by: Any, users: dict[int, str]) -> str:
    """E-mail of the annotating user (export gives an id or a user dict)."""
    if isinstance(completed_by, dict):
        return str(
            completed_by.get("email")
            or users.get(completed_by.get("id"), f"user:{completed_by.get('id')}")
        )
    return users.get(completed_by, f"user:{completed_by}")


def task_to_document(
    task: dict[str, Any], users: dict[int, str], stats: PullStats, unit: OffsetUnit = LS_OFFSET_UNIT
) -> Document:
    """A fully exported task -> Document with one gold AnnotationSet per submitted annotation.

    Skipped (cancelled) annotations go to ``stats.skipped``; drafts are not annotations and are
    only counted.
    """
    article = task_article(task)
    task_where = f"task {task['id']}"
    sets = []
    stats.counts["drafts_excluded"] += len(
        _array(task.get("drafts"), "drafts", article.id, task_where)
    )
    for i, annotation in enumerate(
        _array(task.get("annotations"), "annotations", article.id, task_where)
    ):
        nth = f"annotation {i + 1} of {len(task['annotations'])}"
        annotation = _object(annotation, nth, article.id, task_where)
        where = _where(
            task["id"], _integer(annotation.get("id"), f"the id of {nth}", article.id, task_where)
        )
        annotator = annotator_name(
            _completed_by(annotation.get("completed_by"), article.id, where), users
        )
        cancelled = annotation.get("was_cancelled")
        if cancelled is not None and not isinstance(cancelled, bool):
            raise _shape_error(article.id, where, "was_cancelled", cancelled, "a boolean")
        if cancelled:
            stats.skipped.append(
                {
                    "task": task.get("id"),
                    "annotation": annotation.get("id"),
                    "article_id": article.id,
                    "annotator": annotator,
                    "created_at": annotation.get("created_at"),
                }
            )
            stats.counts["annotations_skipped"] += 1
            continue
        sets.append(result_to_annotation(task, annotation, annotator, stats, unit))
        stats.counts["annotations"] += 1
    return Document(article, tuple(sets))
