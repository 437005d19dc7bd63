"""The rule-based annotator and pair baseline on hand-written sentences."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.core.document import Article, Document, validate
from pipelines.core.text import sentences
from pipelines.models.rules import MODEL_VERSION, annotate, predict_stance


def run(text: str):
    """Annotate ``text``; return (spans by label, relations) after checking the document is valid."""
    ann = annotate(Article.from_text(text))
    validate(Document(Article.from_text(text), (ann,)))
    by_label: dict[str, list[str]] = {}
    for span in ann.spans:
        by_label.setdefault(span.label, []).append(span.text)
    ids = {s.id: s.text for s in ann.spans}
    rels = [(ids[r.source], ids[r.claim], r.stance) for r in ann.relations]
    return by_label, rels


def test_could_not_confirm():
    """The claim starts after the denial cue and keeps its "that" (as PolNeAR's gold Content does)."""
    spans, rels = run(
        "Ukraine said it could not confirm that Russia had used North Korean missiles."
    )
    assert spans == {
        "Source": ["Ukraine"],
        "Denial": ["could not confirm"],
        "Claim": ["that Russia had used North Korean missiles"],
    }
    assert rels == [("Ukraine", "that Russia had used North Korean missiles", "unconfirmed")]


def test_annotation_set_metadata():
    ann = annotate(Article.from_text("Officials said it rained."))
    assert (ann.annotator, ann.provenance, ann.model_version) == (
        "rules",
        "prediction",
        MODEL_VERSION,
    )
    assert (
        ann.spans
        and all(s.score is None for s in ann.spans)  # rules give no probability
        and all(r.score is None for r in ann.relations)
    )


@pytest.mark.parametrize(
    ("text", "source", "claim", "stance"),
    [
        (
            "The U.S. Army denied that it had fired first.",
            "The U.S. Army",
            "that it had fired first",
            "denies",
        ),
        (
            "A Pentagon spokesman said the report was false.",
            "A Pentagon spokesman",
            "the report",
            "denies",
        ),
        (
            "According to the Pentagon, five soldiers died.",
            "the Pentagon",
            "five soldiers died",
            "asserts",
        ),
        (
            "Five soldiers died, according to the Pentagon.",
            "the Pentagon",
            "Five soldiers died",
            "asserts",
        ),
        ('"We will win," Mr. Smith said.', "Mr. Smith", '"We will win,"', "asserts"),
        ("“We will win,” said Mr. Smith.", "Mr. Smith", "“We will win,”", "asserts"),
        ('He said: "We are not leaving."', "He", '"We are not leaving."', "asserts"),
        (
            "Smith said “taxes will rise” next year.",
            "Smith",
            "“taxes will rise” next year",
            "asserts",
        ),
        (
            "Prices rose sharply, officials said.",
            "officials",
            "Prices rose sharply",
            "asserts",
        ),
        (
            "White House spokesman Josh Earnest told reporters that the president would veto the bill.",
            "White House spokesman Josh Earnest",
            "that the president would veto the bill",
            "asserts",
        ),
        (
            "The country's foreign ministry has repeatedly denied the reports.",
            "The country's foreign ministry",
            "the reports",
            "denies",
        ),
        (
            "Smith declined to comment on the allegations.",
            "Smith",
            "on the allegations",
            "unconfirmed",
        ),
    ],
)
def test_sentences(text, source, claim, stance):
    _, rels = run(text)
    assert rels == [(source, claim, stance)]


def test_newlines_and_offsets():
    """Sentences never cross a line break and every span's offsets point at its text."""
    text = "Markets fell.\n\nOn Monday, the ministry said that talks had failed.\nNothing else here"
    ann = annotate(Article.from_text(text))
    assert [(s.label, s.text) for s in ann.spans] == [
        ("Source", "the ministry"),
        ("Claim", "that talks had failed"),
    ]
    assert all(text[s.start : s.end] == s.text for s in ann.spans)
    assert [text[s:e] for s, e in sentences(text)] == [
        "Markets fell.",
        "On Monday, the ministry said that talks had failed.",
        "Nothing else here",
    ]


@pytest.mark.parametrize(
    "text",
    ["", "   \n\n", "The sky is blue.", "Prices rose 5% in May.\nThen they fell."],
)
def test_no_attribution(text):
    ann = annotate(Article.from_text(text))
    assert ann.spans == () and ann.relations == ()


def test_one_attribution_per_sentence_and_unique_ids():
    text = "Smith said taxes would rise. Jones denied that taxes would rise. Smith said taxes would rise."
    ann = annotate(Article.from_text(text))
    assert len({s.id for s in ann.spans}) == len(ann.spans)
    assert [r.stance for r in ann.relations] == ["asserts", "denies", "asserts"]


@pytest.mark.parametrize(
    ("claim", "context", "expected"),
    [
        ("Apple buys Tesla", "The weather in Paris was sunny all week.", "unrelated"),
        (
            "Apple buys Tesla",
            "Apple has agreed to buy Tesla for $100bn, the companies said.",
            "asserts",
        ),
        ("Apple buys Tesla", "Apple denied that it would buy Tesla.", "denies"),
        ("Apple buys Tesla", "Apple reportedly plans to buy Tesla.", "unconfirmed"),
        (
            "Apple buys Tesla",
            "Apple could not confirm it would buy Tesla.",
            "unconfirmed",
        ),
        ("", "Anything", "unrelated"),
    ],
)
def test_predict_stance(claim, context, expected):
    assert predict_stance(claim, context) == expected


def test_predict_stance_prefers_the_source_sentences():
    context = "Apple will buy Tesla, Reuters said. Tesla denied that Apple will buy Tesla."
    assert predict_stance("Apple will buy Tesla", context, source="Reuters") == "asserts"
    assert predict_stance("Apple will buy Tesla", context, source="Tesla") == "denies"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "Smith",
                "said",
                "denied",
                "could not confirm",
                "according to",
                "“",
                "”",
                '"',
                ",",
                ".",
                "\n",
                "that",
                "the",
                "told",
                " ",
            ]
        ),
        max_size=20,
    ).map(" ".join)
    | st.text(max_size=60)
)
def test_any_text_gives_a_valid_annotation_set(text):
    ann = annotate(Article.from_text(text))
    validate(Document(Article.from_text(text), (ann,)))
    assert all(r.stance in ("asserts", "denies", "unconfirmed") for r in ann.relations)


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("The mayor said the water was safe.", "The mayor"),
        ("A spokeswoman for the authority said the dam was inspected in May.",
         "A spokeswoman for the authority"),
        ("Researchers at the national water institute said that pollution had doubled.",
         "Researchers at the national water institute"),
        ("In a statement, the regional health agency said no cases were found.",
         "the regional health agency"),
        ("He claimed the plan that officials said was dead.", "He"),  # first trigger wins
    ],
)  # fmt: skip
def test_nominal_sources(text, source):
    ann = annotate(Article.from_text(text))
    assert [s.text for s in ann.spans if s.label == "Source"] == [source]
