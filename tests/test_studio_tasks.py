"""Pure conversions document model <-> Label Studio JSON, on hand-written Unicode edge cases."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.core.document import AnnotationSet, Article, DocumentError, Relation, Span
from pipelines.studio.sync import plan_push, tasks_to_documents
from pipelines.studio.tasks import (
    PullStats,
    article_to_task,
    codepoint_to_utf16,
    content_hash,
    from_ls_offset,
    region_to_span,
    task_to_document,
    to_ls_offset,
    utf16_to_codepoint,
)

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # ZWJ sequence: 5 code points, 8 UTF-16 units
THUMBS = "\U0001f44d\U0001f3fd"  # thumbs up + skin tone: 2 code points, 4 units
NFC = unicodedata.normalize("NFC", "Zelenskyy in Kyïv")
NFD = unicodedata.normalize("NFD", "Zelenskyy in Kyïv")

TEXTS = [
    f"{FAMILY} Ukraine said it could not confirm that Russia had used North Korean missiles. {THUMBS}",
    f"{NFD} said {THUMBS} that {NFC} denied it.",
    "Officials said\r\nthe claim was false.\r\nA U.S. spokesman said Russia had used them.",
]


def spans_of(text: str, *pieces: tuple[str, str]) -> tuple[Span, ...]:
    out = []
    for i, (label, piece) in enumerate(pieces):
        start = text.index(piece)
        out.append(Span(id=f"s{i}", label=label, start=start, end=start + len(piece), text=piece))
    return tuple(out)


def annotated(text: str) -> tuple[Article, AnnotationSet]:
    """Spans that straddle or follow emoji / combining marks / CRLF."""
    article = Article.from_text(text)
    words = text.split()
    spans = spans_of(
        text, ("Source", words[0]), ("Claim", " ".join(words[-3:])), ("Denial", words[2])
    )
    ann = AnnotationSet(
        annotator="rules",
        provenance="prediction",
        spans=spans,
        relations=(Relation(source="s0", claim="s1", stance="unconfirmed"),),
        model_version="rules-1",
    )
    return article, ann


def as_exported(task: dict, unit: str = "codepoint") -> dict:
    """What the full JSON export looks like after an annotator accepted the prediction."""
    pred = task["predictions"][0]
    annotation = {
        "id": 7,
        "completed_by": 3,
        "result": pred["result"],
        "was_cancelled": False,
        "created_at": "2026-01-01T00:00:00Z",
    }
    return {"id": 42, "data": task["data"], "annotations": [annotation], "drafts": []}


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("unit", ["codepoint", "utf16"])
def test_offsets_round_trip_every_boundary(text: str, unit: str) -> None:
    for i in range(len(text) + 1):
        assert from_ls_offset(text, to_ls_offset(text, i, unit), unit) == i  # type: ignore[arg-type]


def test_utf16_units_of_emoji() -> None:
    text = f"{FAMILY}x{THUMBS}y"
    assert codepoint_to_utf16(text, 5) == 8  # after the family
    assert codepoint_to_utf16(text, 6) == 9  # after "x"
    assert utf16_to_codepoint(text, 13) == 8  # after the thumbs + tone
    with pytest.raises(ValueError, match="surrogate pair"):
        utf16_to_codepoint(text, 1)
    with pytest.raises(ValueError, match="past the end"):
        utf16_to_codepoint(text, 99)


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("unit", ["codepoint", "utf16"])
def test_prediction_round_trip(text: str, unit: str) -> None:
    article, ann = annotated(text)
    task = article_to_task(article, ((ann, "rules-1"),), unit)  # type: ignore[arg-type]
    assert task["data"]["article_id"] == article.id and task["data"][
        "content_hash"
    ] == content_hash(text)
    assert task["predictions"][0]["model_version"] == "rules-1"
    stats = PullStats()
    doc = task_to_document(as_exported(task), {3: "ann@example.com"}, stats, unit)  # type: ignore[arg-type]
    (got,) = doc.annotations
    assert doc.article == article
    assert got.spans == ann.spans and got.relations == ann.relations
    assert got.annotator == "ann@example.com" and got.provenance == "gold"
    assert (
        got.origin == "label-studio:task=42,annotation=7"
        and got.created_at == "2026-01-01T00:00:00Z"
    )
    assert not stats.counts.get("spans_utf16_offsets") and not stats.counts.get(
        "spans_codepoint_offsets"
    )


def test_nfc_and_nfd_are_different_texts() -> None:
    assert NFC != NFD and len(NFD) == len(NFC) + 1
    article, ann = annotated(TEXTS[1])
    task = article_to_task(article, ((ann, "v"),))
    doc = task_to_document(as_exported(task), {}, PullStats())
    assert doc.annotations[0].spans == ann.spans
    assert doc.annotations[0].annotator == "user:3"


def test_utf16_offsets_are_accepted_explicitly_and_counted() -> None:
    """A region stored in UTF-16 units (old frontends) still matches its text: converted and counted."""
    text = TEXTS[0]
    article, ann = annotated(text)
    task = article_to_task(article, ((ann, "v"),), "utf16")
    stats = PullStats()
    doc = task_to_document(as_exported(task), {}, stats, "codepoint")
    assert doc.annotations[0].spans == ann.spans
    # every span ends after the family emoji (8 UTF-16 units, 5 code points), so all three differ
    assert stats.counts["spans_utf16_offsets"] == 3


def test_offset_mismatch_names_task_annotation_and_offsets() -> None:
    text = TEXTS[0]
    region = {
        "id": "r1",
        "type": "labels",
        "value": {"start": 3, "end": 9, "text": "Ukraine", "labels": ["Source"]},
    }
    with pytest.raises(DocumentError) as e:
        region_to_span(text, region, "task 42, annotation 7", "doc1", PullStats())
    msg = str(e.value)
    assert "task 42, annotation 7" in msg and "[3, 9)" in msg and "'r1'" in msg and "Ukraine" in msg


def _task_with(result: list[dict], **ann_fields: object) -> dict:
    text = "Ukraine said Russia used missiles"
    data = article_to_task(Article.from_text(text))["data"]
    annotation = {
        "id": 1,
        "completed_by": 1,
        "result": result,
        "was_cancelled": False,
        **ann_fields,
    }
    return {"id": 5, "data": data, "annotations": [annotation], "drafts": [{"id": 9, "result": []}]}


def _region(rid: str, label: str, start: int, end: int) -> dict:
    text = "Ukraine said Russia used missiles"
    return {
        "id": rid,
        "from_name": "label",
        "to_name": "text",
        "type": "labels",
        "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]},
    }


def test_relation_drawn_claim_to_source_is_normalised_and_counted() -> None:
    rel = {
        "type": "relation",
        "from_id": "c",
        "to_id": "s",
        "direction": "right",
        "labels": ["asserts"],
    }
    stats = PullStats()
    doc = task_to_document(
        _task_with([_region("s", "Source", 0, 7), _region("c", "Claim", 13, 33), rel]), {}, stats
    )
    assert doc.annotations[0].relations == (Relation(source="s", claim="c", stance="asserts"),)
    assert stats.counts["relations_drawn_claim_to_source"] == 1
    assert stats.counts["drafts_excluded"] == 1


@pytest.mark.parametrize(
    ("labels", "ends", "match"),
    [
        ([], ("Source", "Claim"), "exactly one of"),
        (["asserts"], ("Source", "Denial"), "only Source -> Claim"),
    ],
)
def test_bad_relations_are_errors(labels: list[str], ends: tuple[str, str], match: str) -> None:
    rel = {"type": "relation", "from_id": "a", "to_id": "b", "labels": labels}
    task = _task_with([_region("a", ends[0], 0, 7), _region("b", ends[1], 13, 33), rel])
    with pytest.raises(DocumentError, match=match):
        task_to_document(task, {}, PullStats())


def test_skipped_annotations_are_recorded_not_dropped() -> None:
    stats = PullStats()
    doc = task_to_document(
        _task_with([], was_cancelled=True, created_at="t"), {1: "a@example.com"}, stats
    )
    assert doc.annotations == ()
    assert stats.skipped == [
        {
            "task": 5,
            "annotation": 1,
            "article_id": doc.article.id,
            "annotator": "a@example.com",
            "created_at": "t",
        }
    ]


def test_plan_push_new_unchanged_changed_duplicate() -> None:
    a, b = Article.from_text("first story"), Article.from_text("second story")
    b2 = Article(id=b.id, text="second story, corrected")
    tasks = [{"id": 1, **article_to_task(a)}, {"id": 2, **article_to_task(b)}]
    plan = plan_push([a, b2, b2, Article.from_text("third")], tasks)
    assert plan.unchanged == 1 and plan.duplicates_in_input == 1
    assert [x.text for x in plan.new] == ["third"] and plan.changed == [b2]
    assert plan.stale_tasks == {2: content_hash(b2.text)}


def test_plan_push_text_reverted_to_a_stale_version_is_imported_again() -> None:
    a = Article.from_text("first story")
    a2 = Article(id=a.id, text="first story!")
    stale = {"id": 1, "data": {**article_to_task(a)["data"], "stale": "changed"}}
    live = {"id": 2, **article_to_task(a2)}
    plan = plan_push([a], [stale, live])
    assert (
        plan.changed == [a]
        and plan.stale_tasks == {2: content_hash(a.text)}
        and plan.unchanged == 0
    )


def test_pull_merges_tasks_and_sets_stale_apart() -> None:
    rel = {"type": "relation", "from_id": "s", "to_id": "c", "labels": ["asserts"]}
    one = _task_with([_region("s", "Source", 0, 7), _region("c", "Claim", 13, 33), rel])
    two = {**one, "id": 6, "annotations": [{**one["annotations"][0], "id": 2, "completed_by": 2}]}
    stale = {**one, "id": 7, "data": {**one["data"], "stale": "changed"}}
    result = tasks_to_documents([one, two, stale], {1: "a@x", 2: "b@x"})
    assert result.errors == []
    (doc,) = result.documents
    assert [a.annotator for a in doc.annotations] == ["a@x", "b@x"]
    assert len(result.stale) == 1 and result.stats.counts["stale_tasks_with_annotations"] == 1


ALPHABET = st.sampled_from(
    ["a", "b", " ", "é", "e\u0301", "\r\n", "\n", FAMILY, THUMBS, "\U0001f600", "中", "\u200d"]
)


@given(st.lists(ALPHABET, min_size=2, max_size=30), st.data())
def test_round_trip_property(pieces: list[str], data: st.DataObject) -> None:
    """Any span over any mix of emoji / combining marks / CRLF survives push -> pull unchanged."""
    text = "".join(pieces)
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    unit = data.draw(st.sampled_from(["codepoint", "utf16"]))
    span = Span(id="x", label="Claim", start=start, end=end, text=text[start:end])
    ann = AnnotationSet(annotator="m", provenance="prediction", spans=(span,))
    task = article_to_task(Article.from_text(text), ((ann, "v"),), unit)
    doc = task_to_document(as_exported(task), {}, PullStats(), unit)
    assert doc.annotations[0].spans == (span,)
