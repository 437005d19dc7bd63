"""Importers of PolNeAR, FNC-1 and Emergent: hand-written edge cases, then the real mirror."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from pipelines.core.document import StancePair
from pipelines.sources.corpora import CorpusError
from pipelines.sources.corpora.emergent import load_emergent, remove_overlap
from pipelines.sources.corpora.fnc1 import load_fnc1, story_groups
from pipelines.sources.corpora.polnear import PolnearReport, load_polnear, parse_ann

# --- PolNeAR, hand-written -------------------------------------------------------------------

TEXT = "Ukraine said it could not confirm that Russia had used missiles.\nMoscow denied it.\n"


def polnear(
    tmp_path: Path,
    files: dict[str, str],
    text: str = TEXT,
    article: str = "pub_2016-01-01_story",
) -> Path:
    """A one-article PolNeAR tree; ``files`` maps annotator id -> .ann content."""
    split = tmp_path / "data" / "train"
    (split / "text").mkdir(parents=True)
    (split / "attributions").mkdir()
    (split / "text" / f"{article}.txt").write_text(text, encoding="utf-8", newline="")
    for annotator, content in files.items():
        (split / "attributions" / f"{article}_{annotator}.ann").write_text(
            content, encoding="utf-8", newline=""
        )
    return tmp_path


def load_one(root: Path, report: PolnearReport | None = None):
    docs = list(load_polnear(root, "train", report))
    assert len(docs) == 1
    return docs[0]


ANN = (
    "T1\tSource 0 7\tUkraine\n"
    "T2\tCue 16 33\tcould not confirm\n"
    "T3\tContent 34 63\tthat Russia had used missiles\n"
    "T4\tAttribution 16 33\tcould not confirm\n"
    "E1\tAttribution:T4 Content:T3 Cue:T2 Source:T1\n"
    "T5\tSource 65 71\tMoscow\n"
    "T6\tCue 72 78\tdenied\n"
    "T7\tContent 79 81\tit\n"
    "T8\tAttribution 72 78\tdenied\n"
    "E2\tAttribution:T8 Source:T5 Cue:T6 Content:T7\n"
)


def test_polnear_mapping(tmp_path):
    doc = load_one(polnear(tmp_path, {"ab12": ANN}))
    (ann,) = doc.annotations
    assert (ann.annotator, ann.provenance, ann.origin) == (
        "ab12",
        "gold",
        "polnear:train/pub_2016-01-01_story_ab12.ann",
    )
    assert [(s.id, s.label, s.text) for s in ann.spans] == [
        ("T1", "Source", "Ukraine"),
        ("T2-denial", "Denial", "could not confirm"),
        ("T3", "Claim", "that Russia had used missiles"),
        ("T5", "Source", "Moscow"),
        ("T6-denial", "Denial", "denied"),
        ("T7", "Claim", "it"),
    ]
    assert [(r.source, r.claim, r.stance, r.cue) for r in ann.relations] == [
        ("T1", "T3", "unconfirmed", "could not confirm"),
        ("T5", "T7", "denies", "denied"),
    ]
    assert doc.article.text == TEXT


def test_polnear_plain_cue_asserts_and_declined_reads_the_content(tmp_path):
    text = "Smith said taxes rose. Jones declined to comment."
    ann = (
        "T1\tSource 0 5\tSmith\nT2\tCue 6 10\tsaid\nT3\tContent 11 21\ttaxes rose\nE1\tSource:T1 Cue:T2 Content:T3\n"
        "T4\tSource 23 28\tJones\nT5\tCue 29 37\tdeclined\nT6\tContent 38 48\tto comment\nE2\tSource:T4 Cue:T5 Content:T6\n"
    )
    (a,) = load_one(polnear(tmp_path, {"x": ann}, text)).annotations
    assert [(r.stance, r.cue) for r in a.relations] == [
        ("asserts", "said"),
        ("unconfirmed", "declined"),
    ]
    assert [s.text for s in a.spans if s.label == "Denial"] == ["declined"]


def tb(tid: str, role: str, text: str, *parts: str) -> str:
    """A brat text-bound line for the first occurrence of each part in ``text``."""
    offsets = [(text.index(p), text.index(p) + len(p)) for p in parts]
    return f"{tid}\t{role} {';'.join(f'{s} {e}' for s, e in offsets)}\t{' '.join(parts)}\n"


def test_polnear_discontinuous_and_sourceless(tmp_path):
    text = "“We won,” he said, “and we will win again.” It was reported that taxes rose."
    ann = (
        tb("T1", "Content", text, "We won", "and we will win again")
        + tb("T2", "Source", text, "he")
        + tb("T3", "Cue", text, "said")
        + tb("T9", "Attribution", text, "said")
        + "E1\tAttribution:T9 Content:T1 Cue:T3 Source:T2\n"
        + tb("T4", "Cue", text, "reported")
        + tb("T6", "Attribution-no-source", text, "reported")
        + tb("T5", "Content", text, "that taxes rose")
        + "E2\tAttribution-no-source:T6 Cue:T4 Content:T5\n"
    )
    report = PolnearReport()
    (a,) = load_one(polnear(tmp_path, {"x": ann}, text), report).annotations
    assert [(s.id, s.text) for s in a.spans] == [
        ("T1.1", "We won"),
        ("T2", "he"),
        ("T1.2", "and we will win again"),
        ("T5", "that taxes rose"),
    ]
    assert [(r.source, r.claim) for r in a.relations] == [
        ("T2", "T1.1"),
        ("T2", "T1.2"),
    ]
    assert not report.problems and not report.argument_problems


def test_polnear_multiline_text_bound(tmp_path):
    text = "He said:\n\nWe won.\nIt rained."
    ann = "T1\tSource 0 2\tHe\nT2\tContent 10 17;18 28\tWe won.\nIt rained.\nT3\tCue 3 7\tsaid\nE1\tSource:T1 Content:T2 Cue:T3\n"
    bounds, events, _ = parse_ann(
        polnear(tmp_path, {"x": ann}, text) / "data/train/attributions/pub_2016-01-01_story_x.ann"
    )
    assert bounds["T2"].text == "We won.\nIt rained." and len(events) == 1
    (a,) = load_one(tmp_path).annotations
    assert [s.text for s in a.spans if s.label == "Claim"] == ["We won.", "It rained."]


def test_polnear_mismatched_and_out_of_range_spans_are_reported_not_fixed(tmp_path):
    ann = ANN + "T10\tSource 1 7\tUkraine\nT11\tContent 60 999\tbeyond the end\n"
    report = PolnearReport()
    (a,) = load_one(polnear(tmp_path, {"ab12": ann}), report).annotations
    problems = {(p.tid, p.start, p.end, p.expected, p.found) for p in report.problems}
    assert problems == {
        ("T10", 1, 7, "Ukraine", "kraine"),
        ("T11", 60, 999, "beyond the end", "les.\nMoscow denied it.\n"),
    }
    message = str(report.problems[0])
    assert (
        "pub_2016-01-01_story_ab12.ann:11" in message and "T10" in message and "'kraine'" in message
    )
    assert {s.id for s in a.spans} == {
        "T1",
        "T2-denial",
        "T3",
        "T5",
        "T6-denial",
        "T7",
    }  # all the others kept
    assert report.spans == len(a.spans)


def test_polnear_duplicates_merge_and_annotators_stay_apart(tmp_path):
    dup = (
        ANN
        + "T20\tSource 0 7\tUkraine\nT21\tCue 8 12\tsaid\nT22\tContent 34 63\tthat Russia had used missiles\nE9\tSource:T20 Cue:T21 Content:T22\n"
    )
    report = PolnearReport()
    doc = load_one(polnear(tmp_path, {"ab12": dup, "cd34": ANN}), report)
    assert [a.annotator for a in doc.annotations] == ["ab12", "cd34"]
    a = doc.annotations[0]
    assert [s.id for s in a.spans if s.label == "Source"] == ["T1", "T5"]
    assert [(r.source, r.claim, r.stance) for r in a.relations] == [
        ("T1", "T3", "unconfirmed"),
        ("T5", "T7", "denies"),
    ]
    assert report.merged_duplicates == 2


def test_polnear_role_mismatch_is_reported(tmp_path):
    ann = ANN.replace("E2\tAttribution:T8 Source:T5", "E2\tAttribution:T8 Source:T7 Content:T5")
    ann = ann.replace(" Content:T7\n", "\n")
    report = PolnearReport()
    (a,) = load_one(polnear(tmp_path, {"x": ann}), report).annotations
    assert len(report.argument_problems) == 2 and "E2 names Source:T7" in str(
        report.argument_problems[0]
    )
    assert len(a.relations) == 1 and {"T5", "T7"} <= {s.id for s in a.spans}


@pytest.mark.parametrize(
    ("bad", "line"),
    [
        ("T1\tSource zero 7\tUkraine\n", 1),
        ("E1\tSource:T99\n", 1),
        ("T1\tSource 0 7\tUkraine\nE1\tSource T1\n", 2),
        ("T1\tSource 0 7\tUkraine\nT1\tSource 0 7\tUkraine\n", 2),
    ],
)
def test_polnear_malformed_line_names_file_and_line(tmp_path, bad, line):
    polnear(tmp_path, {"x": bad})
    with pytest.raises(CorpusError, match=rf"pub_2016-01-01_story_x\.ann:{line}: "):
        list(load_polnear(tmp_path, "train"))


def test_polnear_undecodable_file(tmp_path):
    path = polnear(tmp_path, {"x": ""}) / "data/train/attributions/pub_2016-01-01_story_x.ann"
    path.write_bytes(b"T1\tSource 0 1\t\xff\n")
    with pytest.raises(CorpusError, match=r"story_x.ann: not UTF-8"):
        list(load_polnear(tmp_path, "train"))


# --- FNC-1 and Emergent, hand-written ---------------------------------------------------------


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, *rows])


def fnc1(tmp_path: Path, stances: list[list[str]], bodies: list[list[str]]) -> Path:
    write_csv(tmp_path / "train_stances.csv", ["Headline", "Body ID", "Stance"], stances)
    write_csv(tmp_path / "train_bodies.csv", ["Body ID", "articleBody"], bodies)
    return tmp_path


def test_fnc1_mapping_and_order(tmp_path):
    body = 'Line one, "quoted".\n\nLine two.'
    root = fnc1(
        tmp_path,
        [
            ["H a", "7", "agree"],
            ["H b", "7", "disagree"],
            ["H c", "8", "discuss"],
            ["H d", "8", "unrelated"],
        ],
        [["7", body], ["8", "Other body."]],
    )
    pairs = list(load_fnc1(root, "train"))
    assert [(p.id, p.claim, p.stance, p.group) for p in pairs] == [
        ("fnc1:train:0", "H a", "asserts", "fnc1:story:7"),
        ("fnc1:train:1", "H b", "denies", "fnc1:story:7"),
        ("fnc1:train:2", "H c", "unconfirmed", "fnc1:story:8"),
        ("fnc1:train:3", "H d", "unrelated", "fnc1:story:8"),
    ]
    assert pairs[0].context == body


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # one headline related to two bodies: one story, named by the lowest (numeric) Body ID
        ([("H", "10", "agree"), ("H", "9", "discuss")], {"9": "9", "10": "9"}),
        # an unrelated pairing joins nothing
        ([("H", "1", "agree"), ("H", "2", "unrelated")], {"1": "1", "2": "2"}),
        # a chain: H1 joins 1-2, H2 joins 2-3
        (
            [
                ("H1", "1", "agree"),
                ("H1", "2", "disagree"),
                ("H2", "2", "discuss"),
                ("H2", "3", "agree"),
            ],
            {"1": "1", "2": "1", "3": "1"},
        ),
        # a body with only unrelated pairs is its own story
        ([("H", "5", "unrelated")], {"5": "5"}),
    ],
)
def test_fnc1_story_groups(rows, expected):
    assert story_groups(rows) == {b: f"fnc1:story:{s}" for b, s in expected.items()}


@pytest.mark.parametrize(
    ("stances", "message"),
    [
        (
            [["H", "7", "agree"], ["H", "7", "neutral"]],
            r"train_stances\.csv: row 2: unknown stance 'neutral'",
        ),
        ([["H", "9", "agree"]], r"train_stances\.csv: row 1: Body ID '9' has no body"),
        ([["", "7", "agree"]], r"train_stances\.csv: row 1: empty \['Headline'\]"),
    ],
)
def test_fnc1_bad_rows(tmp_path, stances, message):
    with pytest.raises(CorpusError, match=message):
        list(load_fnc1(fnc1(tmp_path, stances, [["7", "Body"]]), "train"))


def pair(i: int, context: str, claim: str = "c") -> StancePair:
    return StancePair(f"p{i}", claim, context, "asserts", "g", "o")


def test_remove_overlap_compares_normalised_headlines():
    emergent = [pair(1, "Apple  buys TESLA"), pair(2, "Something else")]
    kept, removed = remove_overlap(emergent, [pair(9, "body", claim="apple buys tesla")])
    assert [p.id for p in kept] == ["p2"] and [p.id for p in removed] == ["p1"]


def test_emergent_unknown_stance(tmp_path):
    header = [
        "",
        "claimHeadline",
        "articleHeadline",
        "articleHeadlineStance",
        "articleId",
        "claimId",
    ]
    write_csv(
        tmp_path / "url-versions-2015-06-14-clean-train.csv",
        header,
        [["0", "C", "A", "maybe", "a1", "c1"]],
    )
    with pytest.raises(CorpusError, match=r"clean-train\.csv: row 1: unknown stance 'maybe'"):
        list(load_emergent(tmp_path, "train"))


# --- the real mirror ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def polnear_mirror(mirror):
    """All three PolNeAR splits, read once for the module (a few seconds)."""
    out = {}
    for split in ("train", "dev", "test"):
        report = PolnearReport()
        out[split] = (list(load_polnear(mirror / "polnear", split, report)), report)
    return out


def test_polnear_mirror_counts(polnear_mirror):
    docs = {split: d for split, (d, _) in polnear_mirror.items()}
    # 1,008 article files; one story is in train twice (two dates, same text): one document
    assert {s: len(d) for s, d in docs.items()} == {"train": 839, "dev": 84, "test": 84}
    assert sum(len(d.annotations) for ds in docs.values() for d in ds) == 1107  # .ann files
    ids = [{d.article.id for d in ds} for ds in docs.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])  # no article in two splits
    stances = Counter(
        r.stance for ds in docs.values() for d in ds for a in d.annotations for r in a.relations
    )
    assert stances["denies"] > 100 and stances["unconfirmed"] > 50 and sum(stances.values()) > 25000
    assert docs["train"][0].article.publisher == "breitbart" and docs["train"][0].article.title


def test_polnear_mirror_every_span_kept_or_reported(polnear_mirror, mirror):
    """Each Source/Content fragment of every .ann file is a span, a merged duplicate or a problem."""
    for split, (docs, report) in polnear_mirror.items():
        fragments = 0
        for path in (mirror / "polnear" / "data" / split / "attributions").glob("*.ann"):
            bounds, _, _ = parse_ann(path)
            fragments += sum(
                len(t.fragments) for t in bounds.values() if t.role in ("Source", "Content")
            )
        kept = sum(1 for d in docs for a in d.annotations for s in a.spans if s.label != "Denial")
        assert kept + report.merged_duplicates + len(report.problems) == fragments
        assert len(report.problems) <= 0.005 * fragments
        assert report.spans == sum(len(a.spans) for d in docs for a in d.annotations)


def test_fnc1_mirror(mirror):
    train = list(load_fnc1(mirror / "fnc1", "train"))
    test = list(load_fnc1(mirror / "fnc1", "test"))
    assert (len(train), len(test)) == (49972, 25413)
    assert (
        {p.stance for p in train}
        == {p.stance for p in test}
        == {"asserts", "denies", "unconfirmed", "unrelated"}
    )
    assert Counter(p.stance for p in train)["unrelated"] == 36545
    assert len({p.context for p in train}) <= 1683 and len({p.group for p in train}) == 191
    assert len({p.group for p in test}) == 110  # stories: bodies joined by a related headline
    with open(mirror / "fnc1" / "competition_test_stances.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [p.claim for p in test] == [r["Headline"] for r in rows]  # row-aligned with the anchors
    assert test[5].id == "fnc1:test:5"


def test_emergent_mirror_and_overlap(mirror):
    train = list(load_emergent(mirror / "emergent", "train"))
    test = list(load_emergent(mirror / "emergent", "test"))
    assert (len(train), len(test)) == (2071, 524)
    assert (
        {p.stance for p in train}
        == {p.stance for p in test}
        == {"asserts", "denies", "unconfirmed"}
    )
    assert not {p.group for p in train} & {p.group for p in test}  # claim-disjoint
    assert len({p.id for p in train + test}) == 2595
    kept, removed = remove_overlap(test, load_fnc1(mirror / "fnc1", "train"))
    assert len(removed) > 0 and len(kept) + len(removed) == 524
