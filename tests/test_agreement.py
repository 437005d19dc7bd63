"""Agreement and adjudication on small hand-written documents with known answers."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.core.document import (
    LABELS,
    AnnotationSet,
    Article,
    Document,
    Relation,
    Span,
    validate,
    write_documents,
)
from pipelines.studio.agreement import AgreementError, adjudicate, report, stance_units, trim

TEXT = "The Kremlin denied that Russia used missiles. Kyiv said it could not confirm the strike."
#       0         1         2         3         4         5         6         7         8


def span(sid: str, label: str, sub: str, text: str = TEXT, nth: int = 0) -> Span:
    start = -1
    for _ in range(nth + 1):
        start = text.index(sub, start + 1)
    return Span(sid, label, start, start + len(sub), sub)


KREMLIN = ("s1", "Source", "The Kremlin")
DENIED = ("d1", "Denial", "denied")
RUSSIA = ("c1", "Claim", "Russia used missiles")
KYIV = ("s2", "Source", "Kyiv")
STRIKE = ("c2", "Claim", "the strike")


def ann(
    name: str,
    spans: list[tuple[str, str, str]],
    rels: list[tuple[str, str, str]] = (),
    text: str = TEXT,
    provenance: str = "gold",
) -> AnnotationSet:
    return AnnotationSet(
        annotator=name,
        provenance=provenance,
        spans=tuple(span(*s, text=text) for s in spans),
        relations=tuple(Relation(s, c, st) for s, c, st in rels),
        origin=f"test:{name}",
    )


def doc(*sets: AnnotationSet, text: str = TEXT) -> Document:
    return validate(Document(Article.from_text(text), tuple(sets)))


FULL = [KREMLIN, DENIED, RUSSIA, KYIV, STRIKE]
RELS = [("s1", "c1", "denies"), ("s2", "c2", "unconfirmed")]


def test_identical_annotators_agree_perfectly():
    d = doc(ann("alice", FULL, RELS), ann("bob", FULL, RELS))
    r = report([d])
    assert (
        r["agreement_computed"]
        and r["documents_compared"] == 1
        and r["annotators"] == ["alice", "bob"]
    )
    for mode in ("exact", "overlap"):
        assert r["spans"][mode] == {"Claim": 1.0, "Source": 1.0, "Denial": 1.0}
    # a metrics file holds numbers: definitions live in the module docstring, not in each run
    assert "definition" not in r["spans"] and "definition" not in r["stance"]
    assert r["spans"]["spans"] == {"Claim": 4, "Source": 4, "Denial": 2}
    st = r["stance"]
    assert st["units"] == 2 and st["units_shared"] == 2
    assert (
        st["observed_agreement"] == 1.0
        and st["cohen_kappa"] == 1.0
        and st["krippendorff_alpha"] == 1.0
    )
    json.dumps(r)  # the report is plain JSON


def test_disjoint_annotators():
    d = doc(
        ann("alice", [KREMLIN, RUSSIA], [("s1", "c1", "denies")]),
        ann("bob", [KYIV, STRIKE], [("s2", "c2", "asserts")]),
    )
    r = report([d])
    assert r["spans"]["exact"] == {
        "Claim": 0.0,
        "Source": 0.0,
        "Denial": None,
    }  # nobody used Denial
    assert r["spans"]["overlap"]["Claim"] == 0.0
    st = r["stance"]
    assert st["units"] == 2 and st["units_shared"] == 0
    assert st["cohen_kappa"] is None and st["krippendorff_alpha"] is None and st["pairs"] == []


def test_partial_overlap_counts_for_overlap_not_exact():
    # bob's claim drops "Russia": 2 of 3 tokens shared; his source is "Kremlin" only
    bob = AnnotationSet(
        "bob",
        "gold",
        (span("s1", "Source", "Kremlin"), span("c1", "Claim", "used missiles")),
        (Relation("s1", "c1", "denies"),),
    )
    d = doc(ann("alice", [KREMLIN, RUSSIA], [("s1", "c1", "denies")]), bob)
    r = report([d])
    assert r["spans"]["exact"]["Claim"] == 0.0 and r["spans"]["exact"]["Source"] == 0.0
    assert r["spans"]["overlap"]["Claim"] == pytest.approx(
        2 * 2 / (3 + 2)
    )  # tokens: 3 vs 2, 2 shared
    assert r["spans"]["overlap"]["Source"] == pytest.approx(2 * 1 / (2 + 1))
    # the overlapping relations are the same item, and they agree
    assert r["stance"]["units"] == 1 and r["stance"]["observed_agreement"] == 1.0


def test_whitespace_at_span_edges_is_not_a_disagreement():
    text = "Officials said  the talks failed ."
    start, end = text.index(" the"), text.index(" .") + 1  # bob dragged over the spaces around it
    loose = Span("c1", "Claim", start, end, text[start:end])
    assert loose.text == " the talks failed "
    a = AnnotationSet("alice", "gold", (span("c1", "Claim", "the talks failed", text),))
    b = AnnotationSet("bob", "gold", (loose,))
    d = doc(a, b, text=text)
    assert trim(loose, text).text == "the talks failed"
    assert report([d])["spans"]["exact"]["Claim"] == 1.0
    gold = adjudicate(d)
    assert [(s.text, s.start) for s in gold.spans] == [
        ("the talks failed", text.index("the talks"))
    ]
    validate(Document(d.article, (gold,)))
    blank = Span("w", "Claim", 14, 16, "  ")  # all whitespace: kept whole, never emptied
    assert trim(blank, text) == blank


def test_three_annotators_two_one_split():
    a = ann("alice", FULL, [("s1", "c1", "denies"), ("s2", "c2", "unconfirmed")])
    b = ann("bob", FULL, [("s1", "c1", "denies"), ("s2", "c2", "asserts")])
    c = ann("carol", [KREMLIN, RUSSIA, KYIV], [("s1", "c1", "asserts")])
    d = doc(a, b, c)
    before = copy.deepcopy(d)
    r = report([d])
    assert len(r["spans"]["pairs"]) == 3 and len(r["stance"]["pairs"]) == 3
    assert r["stance"]["units"] == 2 and r["stance"]["units_shared"] == 2
    # Denial: alice-bob 1.0; alice-carol and bob-carol 0.0 -> mean 1/3
    assert r["spans"]["exact"]["Denial"] == pytest.approx(1 / 3)
    alpha = r["stance"]["krippendorff_alpha"]
    assert alpha is not None and -1 <= alpha < 1

    gold = adjudicate(d)
    assert d == before  # inputs untouched
    assert gold.annotator == "adjudicated:majority" and gold.provenance == "gold"
    assert "alice [test:alice]" in gold.origin and "carol [test:carol]" in gold.origin
    assert sorted(s.text for s in gold.spans) == sorted(
        ["The Kremlin", "denied", "Russia used missiles", "Kyiv", "the strike"]
    )
    by_claim = {
        next(s.text for s in gold.spans if s.id == r_.claim): r_.stance for r_ in gold.relations
    }
    # 2 of 3 say "denies"; Kyiv->strike is had by 2 of 3 but they split 1-1 -> tie -> unconfirmed
    assert by_claim == {"Russia used missiles": "denies", "the strike": "unconfirmed"}
    validate(Document(d.article, (gold,)))


def test_minority_span_is_dropped_by_majority():
    d = doc(ann("alice", [KREMLIN, DENIED]), ann("bob", [KREMLIN]), ann("carol", [KREMLIN]))
    assert [s.text for s in adjudicate(d).spans] == ["The Kremlin"]


def test_single_annotator_is_reported_not_compared():
    d = doc(ann("alice", FULL, RELS), ann("model", FULL, RELS, provenance="prediction"))
    r = report([d])
    assert not r["agreement_computed"] and "reason" not in r
    assert (
        r["documents"] == 1
        and r["documents_single_annotator"] == 1
        and r["documents_compared"] == 0
    )
    assert r["spans"]["exact"] == {"Claim": None, "Source": None, "Denial": None}
    assert r["stance"]["cohen_kappa"] is None and r["stance"]["krippendorff_alpha"] is None
    # a lone annotator is its own majority
    assert len(adjudicate(d).spans) == len(FULL)


def test_ties_go_to_unconfirmed_or_to_the_reviewer():
    a = ann("alice", FULL, [("s1", "c1", "denies")])
    b = ann("bob", FULL, [("s1", "c1", "asserts")])
    d = doc(a, b)
    assert [r.stance for r in adjudicate(d).relations] == ["unconfirmed"]
    assert [r.stance for r in adjudicate(d, reviewer="bob").relations] == ["asserts"]
    r = report([d])
    assert r["stance"]["observed_agreement"] == 0.0 and r["stance"]["units_shared"] == 1


def test_reviewer_rule_copies_the_reviewer_where_present():
    a = ann("alice", FULL, RELS)
    b = ann("bob", [KREMLIN], [])
    c = ann("carol", [KREMLIN], [])
    d = doc(a, b, c)
    gold = adjudicate(d, rule="reviewer", reviewer="alice")
    assert gold.spans == a.spans and gold.relations == a.relations
    assert gold.annotator == "adjudicated:reviewer" and "reviewer alice" in gold.origin
    # reviewer absent from this document: majority, said so in origin
    fallback = adjudicate(d, rule="reviewer", reviewer="dave")
    assert [s.text for s in fallback.spans] == [
        "The Kremlin"
    ] and "did not annotate" in fallback.origin
    with pytest.raises(AgreementError, match="needs the reviewer"):
        adjudicate(d, rule="reviewer")
    with pytest.raises(AgreementError, match="not in"):
        adjudicate(d, rule="vote")


def test_same_stance_everywhere_gives_undefined_kappa_and_alpha():
    rels = [("s1", "c1", "denies")]
    r = report([doc(ann("alice", FULL, rels), ann("bob", FULL, rels))])
    assert r["stance"]["observed_agreement"] == 1.0
    assert r["stance"]["cohen_kappa"] is None and r["stance"]["krippendorff_alpha"] is None


def test_stance_units_pair_each_relation_once():
    # bob links the same source to two overlapping claims; only the best match joins alice's unit
    text = TEXT
    b = AnnotationSet(
        "bob",
        "gold",
        (
            span("s1", "Source", "The Kremlin"),
            span("c1", "Claim", "Russia used missiles"),
            span("c9", "Claim", "Russia"),
        ),
        (Relation("s1", "c9", "asserts"), Relation("s1", "c1", "denies")),
    )
    d = doc(ann("alice", [KREMLIN, RUSSIA], [("s1", "c1", "denies")]), b, text=text)
    units = stance_units(d)
    assert sorted(units, key=len) == [{"bob": "asserts"}, {"alice": "denies", "bob": "denies"}]


def test_earlier_adjudication_and_duplicate_annotators():
    a, b = ann("alice", FULL, RELS), ann("bob", FULL, RELS)
    d = doc(a, b)
    with_gold = Document(d.article, (*d.annotations, adjudicate(d)))
    assert report([with_gold])["annotators"] == ["alice", "bob"]
    with pytest.raises(AgreementError, match="annotator 'alice' has two gold annotations"):
        report([Document(d.article, (a, a))])
    with pytest.raises(AgreementError, match="no gold annotation"):
        adjudicate(Document(d.article, ()))


def run_command(src: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.studio.agreement", str(src), str(out)],
        check=False,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
    )


def test_command_writes_json(tmp_path: Path):
    src = tmp_path / "annotations.jsonl"
    write_documents(
        src, [doc(ann("alice", FULL, RELS), ann("bob", FULL, RELS)), doc(ann("alice", [KREMLIN]))]
    )
    out = tmp_path / "metrics" / "agreement.json"
    res = run_command(src, out)
    assert res.returncode == 0, res.stderr
    assert "[agreement] documents=2, compared=1, annotators=2" in res.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["documents_single_annotator"] == 1 and data["spans"]["exact"]["Claim"] == 1.0
    assert [p.name for p in out.parent.iterdir()] == ["agreement.json"]  # no temp file left behind


def test_command_before_any_pull_reports_no_agreement(tmp_path: Path):
    out = tmp_path / "agreement.json"
    res = run_command(tmp_path / "export" / "annotations.jsonl", out)
    assert res.returncode == 0, res.stderr
    assert "not found: no annotations pulled yet" in res.stderr
    assert json.loads(out.read_text(encoding="utf-8"))["agreement_computed"] is False


def test_command_bad_line_names_file_and_line(tmp_path: Path):
    src = tmp_path / "annotations.jsonl"
    src.write_text("{not json\n", encoding="utf-8")
    res = run_command(src, tmp_path / "agreement.json")
    assert res.returncode == 1
    assert f"{src}:1: not valid JSON" in res.stderr
    assert not (tmp_path / "agreement.json").exists()


def studio_agreement(src: Path, out: Path) -> subprocess.CompletedProcess[str]:
    command = ["studio", "agreement", "--annotations", str(src), "--out", str(out)]
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *command],
        check=False, capture_output=True, text=True, cwd=Path(__file__).parents[1],
    )  # fmt: skip


def test_studio_agreement_runs_the_stage(tmp_path: Path):
    """`claimtrace studio agreement` is the DVC stage's code: the same file and the report on stdout."""
    src = tmp_path / "export" / "annotations.jsonl"
    write_documents(src, [doc(ann("alice", FULL, RELS), ann("bob", FULL, RELS))])
    stage_out, cli_out = tmp_path / "stage.json", tmp_path / "cli.json"
    assert run_command(src, stage_out).returncode == 0
    res = studio_agreement(src, cli_out)
    assert res.returncode == 0, res.stderr
    assert cli_out.read_bytes() == stage_out.read_bytes()
    assert json.loads(res.stdout) == json.loads(stage_out.read_text(encoding="utf-8"))


def one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode != 0 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    return lines[0]


def test_studio_agreement_before_any_pull_is_one_line(tmp_path: Path):
    """The user's command says what to do (the DVC stage, above, stays quiet: no pull is no error)."""
    src = tmp_path / "export" / "annotations.jsonl"
    line = one_line_error(studio_agreement(src, tmp_path / "cli.json"))
    assert str(src) in line and "claimtrace studio pull" in line
    assert not (tmp_path / "cli.json").exists()


@pytest.mark.parametrize(
    "content, why",
    [
        ('{"id": "a1", "text": "An article, not a pulled document."}\n', "no field 'article'"),
        ("[1, 2]\n", "not a documents line"),
        ('{"article": {"id": "a", "text": "t", "colour": 1}}\n', "colour"),
    ],
    ids=["articles-jsonl", "not-an-object", "unknown-field"],
)
def test_studio_agreement_on_a_file_that_is_no_pull_export(tmp_path: Path, content: str, why: str):
    src = tmp_path / "articles.jsonl"
    src.write_text(content, encoding="utf-8")
    for res in (studio_agreement(src, tmp_path / "a.json"), run_command(src, tmp_path / "b.json")):
        line = one_line_error(res)
        assert f"{src}:1: not a documents line" in line and why in line, line
        assert "claimtrace studio pull" in line
    assert not list(tmp_path.glob("*.json"))


def test_polnear_articles_with_several_annotators(mirror):
    """PolNeAR's multiply-annotated articles: real human agreement, and a valid adjudicated set."""
    from pipelines.sources.corpora.polnear import load_polnear

    root = mirror / "polnear"
    docs = list(load_polnear(root, "train"))
    r = report(docs)
    assert r["agreement_computed"] and r["documents"] == len(docs)
    assert (
        r["documents_compared"] + r["documents_single_annotator"] == len(docs)
        and r["documents_compared"] > 5
    )
    for label in ("Claim", "Source"):
        exact, overlap = r["spans"]["exact"][label], r["spans"]["overlap"][label]
        assert 0.3 < exact <= overlap <= 1.0, (
            label,
            exact,
            overlap,
        )  # partial credit never lowers F1 here
    assert r["stance"]["units_shared"] > 100 and 0.5 < r["stance"]["krippendorff_alpha"] <= 1.0
    for d in docs:
        if len(d.annotations) >= 2:
            validate(Document(d.article, (*d.annotations, adjudicate(d))))


# --- overlap F1: a relaxation of exact F1 ----------------------------------------------------

EDGE = "Officials in Kyiv said Russia used North Korean missiles in two attacks last week."


def spans_at(*parts: tuple[str, str]) -> list[Span]:
    """Spans of EDGE from (label, substring) pairs; ``substring`` may be a word prefix."""
    return [span(f"x{i}", label, sub, text=EDGE) for i, (label, sub) in enumerate(parts)]


LONG_CLAIM = ("Claim", "Russia used North Korean missiles in two attacks last week")


@pytest.mark.parametrize(
    "a, b, exact, overlap",
    [
        # identical spans
        ([("Source", "Officials")], [("Source", "Officials")], 1.0, 1.0),
        # disjoint spans of one label
        ([("Claim", "Russia used")], [("Claim", "two attacks")], 0.0, 0.0),
        # partial overlap: tokens 3 vs 2, 2 shared -> Dice 0.8
        ([("Claim", "Russia used North")], [("Claim", "used North")], 0.0, 0.8),
        # a span ending inside a word touches the same token: full credit, no exact match
        ([("Source", "Officials")], [("Source", "Officia")], 0.0, 1.0),
        # THE BUG: one long span marked by one annotator only, short ones agreed exactly. Pooled
        # tokens gave 2*1/(1+13) = 0.14 < exact 0.5; spans give 2*1/(1+3) = 0.5
        (
            [("Claim", "Kyiv")],
            [("Claim", "Kyiv"), LONG_CLAIM, ("Claim", "Officials in")],
            0.5,
            0.5,
        ),
        # a span nested in another of the same annotator: the exact pair is matched first
        ([LONG_CLAIM, ("Claim", "Russia used")], [("Claim", "Russia used")], 2 / 3, 2 / 3),
        # one long span vs two short ones inside it: matched one-to-one, not twice
        (
            [LONG_CLAIM],
            [("Claim", "Russia used"), ("Claim", "two attacks last week")],
            0.0,
            2 * (2 * 4 / (10 + 4)) / 3,
        ),
        # overlapping spans of different labels never match
        ([("Source", "Officials in Kyiv")], [("Claim", "Officials in Kyiv")], 0.0, 0.0),
        # the same span twice in one annotation counts once
        ([("Source", "Kyiv"), ("Source", "Kyiv")], [("Source", "Kyiv")], 1.0, 1.0),
        # only one annotator used the labels: 0, not undefined
        ([("Source", "Kyiv")], [], 0.0, 0.0),
        # nobody used any label: undefined
        ([], [], None, None),
    ],
)
def test_overlap_f1_edge_cases(a, b, exact, overlap):
    r = report([doc(ann_spans("alice", a), ann_spans("bob", b), text=EDGE)])
    for mode, want in (("exact", exact), ("overlap", overlap)):
        got = [v for v in r["spans"][mode].values() if v is not None]
        if want is None:
            assert got == [], mode
        else:
            assert max(got) == pytest.approx(want), (mode, r["spans"][mode])
    assert all(
        o >= e
        for e, o in zip(r["spans"]["exact"].values(), r["spans"]["overlap"].values(), strict=True)
        if e is not None
    )


def ann_spans(name: str, parts: list[tuple[str, str]]) -> AnnotationSet:
    return AnnotationSet(name, "gold", tuple(spans_at(*parts)), (), origin=f"test:{name}")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(LABELS), st.integers(0, 80), st.integers(1, 20)), max_size=6
    ),
    st.lists(
        st.tuples(st.sampled_from(LABELS), st.integers(0, 80), st.integers(1, 20)), max_size=6
    ),
)
def test_overlap_f1_is_never_below_exact(a, b):
    def spans(name, parts):
        out = []
        for i, (label, start, length) in enumerate(parts):
            end = min(len(EDGE), start + length)
            out.append(Span(f"{name}{i}", label, start, end, EDGE[start:end]))
        return AnnotationSet(name, "gold", tuple(out), (), origin=f"test:{name}")

    r = report([Document(Article.from_text(EDGE), (spans("a", a), spans("b", b)))])
    for label in LABELS:
        e, o = r["spans"]["exact"][label], r["spans"]["overlap"][label]
        assert (e is None) == (o is None)
        if e is not None:
            assert e - 1e-9 <= o <= 1.0 + 1e-9
