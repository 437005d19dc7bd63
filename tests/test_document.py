"""Invariants of the document model: offsets, validation errors, exact JSONL round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.core.document import (
    LABELS,
    STANCES,
    AnnotationSet,
    Article,
    Document,
    DocumentError,
    Relation,
    Span,
    StancePair,
    article_id,
    read_documents,
    read_pairs,
    validate,
    write_documents,
    write_pairs,
)
from pipelines.core.io import read_jsonl

SEED_SENTENCE = "Ukraine said it could not confirm that Russia had used North Korean missiles."


def span(doc_text: str, sid: str, label: str, needle: str) -> Span:
    start = doc_text.index(needle)
    return Span(sid, label, start, start + len(needle), needle)


def seed_doc(text: str = SEED_SENTENCE) -> Document:
    spans = (
        span(text, "s1", "Source", "Ukraine"),
        span(text, "d1", "Denial", "could not confirm"),
        span(text, "c1", "Claim", "Russia had used North Korean missiles"),
    )
    ann = AnnotationSet(
        "alice", "gold", spans, (Relation("s1", "c1", "unconfirmed", cue="could not confirm"),)
    )
    return Document(Article.from_text(text, title="t"), (ann,))


def test_article_id_is_stable_under_whitespace_and_case():
    assert article_id("A  story\n") == article_id("a story")
    assert article_id("a story") != article_id("another story")


@pytest.mark.parametrize(
    "text",
    [
        SEED_SENTENCE,
        "👩‍👩‍👧 " + SEED_SENTENCE,  # ZWJ family before the spans
        "Caf\u00e9 \u2014 " + SEED_SENTENCE,
        "Line one\r\n" + SEED_SENTENCE,
    ],
)
def test_seed_document_validates_and_round_trips(tmp_path, text):
    doc = seed_doc(text)
    path = tmp_path / "docs.jsonl"
    assert write_documents(path, [doc]) == 1
    assert list(read_documents(path)) == [doc]


def test_shifted_span_names_document_and_span():
    doc = seed_doc()
    bad = doc.annotations[0].spans[0]
    bad = Span(bad.id, bad.label, bad.start + 1, bad.end + 1, bad.text)
    ann = AnnotationSet("alice", "gold", (bad,))
    with pytest.raises(DocumentError, match=r"document '.*', span 's1'.*span says 'Ukraine'"):
        validate(Document(doc.article, (ann,)))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: Span(s.id, "Quote", s.start, s.end, s.text), "label 'Quote'"),
        (lambda s: Span(s.id, s.label, s.start, 10_000, s.text), "outside the text"),
        (lambda s: Span(s.id, s.label, 3, 3, ""), "outside the text"),
    ],
)
def test_invalid_spans_are_rejected(mutate, message):
    doc = seed_doc()
    ann = AnnotationSet("alice", "gold", (mutate(doc.annotations[0].spans[0]),))
    with pytest.raises(DocumentError, match=message):
        validate(Document(doc.article, (ann,)))


def test_relation_must_link_source_to_claim():
    doc = seed_doc()
    ann = doc.annotations[0]
    backwards = AnnotationSet(ann.annotator, "gold", ann.spans, (Relation("c1", "s1", "asserts"),))
    with pytest.raises(DocumentError, match="expected Source"):
        validate(Document(doc.article, (backwards,)))
    dangling = AnnotationSet(ann.annotator, "gold", ann.spans, (Relation("s1", "nope", "asserts"),))
    with pytest.raises(DocumentError, match="does not exist"):
        validate(Document(doc.article, (dangling,)))


def test_several_annotators_are_kept_apart(tmp_path):
    doc = seed_doc()
    bob = AnnotationSet("bob", "gold", doc.annotations[0].spans[:1])
    model = AnnotationSet("model", "prediction", (), (), model_version="v1")
    both = Document(doc.article, (doc.annotations[0], bob, model))
    write_documents(tmp_path / "d.jsonl", [both])
    (back,) = read_documents(tmp_path / "d.jsonl")
    assert [a.annotator for a in back.annotations] == ["alice", "bob", "model"]


def test_bad_jsonl_line_names_file_and_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n{oops\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"x\.jsonl:3: not valid JSON"):
        list(read_jsonl(path))


def test_pair_source_must_be_in_context(tmp_path):
    good = StancePair(
        "p1", "Russia used missiles", SEED_SENTENCE, "unconfirmed", "g1", "test", source="Ukraine"
    )
    write_pairs(tmp_path / "p.jsonl", [good])
    assert list(read_pairs(tmp_path / "p.jsonl")) == [good]
    with pytest.raises(DocumentError, match="not a substring"):
        write_pairs(
            tmp_path / "q.jsonl",
            [StancePair("p2", "c", "context", "asserts", "g", "t", source="Kyiv")],
        )
    assert not (tmp_path / "q.jsonl").exists()  # atomic: a failed write leaves nothing behind


# --- property-based round trip -----------------------------------------------------------------

text_st = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=80
)


@st.composite
def documents(draw) -> Document:
    text = draw(text_st)
    sets = []
    for a in range(draw(st.integers(0, 3))):
        spans = []
        for i in range(draw(st.integers(0, 4))):
            start = draw(st.integers(0, len(text) - 1))
            end = draw(st.integers(start + 1, len(text)))
            spans.append(
                Span(
                    f"a{a}s{i}",
                    draw(st.sampled_from(LABELS)),
                    start,
                    end,
                    text[start:end],
                    draw(st.none() | st.floats(0, 1)),
                )
            )
        sources = [s.id for s in spans if s.label == "Source"]
        claims = [s.id for s in spans if s.label == "Claim"]
        rels = [Relation(s, c, draw(st.sampled_from(STANCES))) for s in sources for c in claims]
        sets.append(
            AnnotationSet(
                f"annotator{a}",
                draw(st.sampled_from(("gold", "silver", "prediction"))),
                tuple(spans),
                tuple(rels),
            )
        )
    return Document(
        Article.from_text(text, url=draw(st.none() | st.text(max_size=10))), tuple(sets)
    )


@settings(max_examples=150, deadline=None)
@given(documents())
def test_jsonl_round_trip_is_exact(tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("rt") / "docs.jsonl"
    write_documents(path, [doc])
    (back,) = read_documents(path)
    assert back == doc
    for ann in back.annotations:
        for s in ann.spans:
            assert back.article.text[s.start : s.end] == s.text
    # one JSON object per line, whatever the text holds (newlines, CR, U+2028, NEL)
    assert path.read_bytes().count(b"\n") == 1


def test_lone_surrogate_is_a_clear_error(tmp_path):
    doc = Document(Article.from_text("bad \ud800 text"))
    with pytest.raises(DocumentError, match="lone surrogate at offset 4"):
        write_documents(tmp_path / "d.jsonl", [doc])
    assert not (tmp_path / "d.jsonl").exists()
