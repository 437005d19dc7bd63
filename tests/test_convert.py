"""The ``convert`` stage: the real mirror end to end (once per module), then bad inputs."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.core.document import normalise_text, read_documents, read_pairs
from pipelines.core.params import ParamsError, load_section
from pipelines.sources.convert import ConvertParams, convert
from pipelines.sources.corpora import CorpusError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def converted(mirror, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``python -m pipelines.sources.convert <mirror> <tmp>`` with the repository's params.yaml (~15 s)."""
    out = tmp_path_factory.mktemp("imported")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.sources.convert",
            str(mirror),
            str(out),
            "--params",
            str(ROOT / "params.yaml"),
        ],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return out, res


def test_convert_mirror_outputs(converted):
    out, res = converted
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "pairs/emergent_test.jsonl",
        "pairs/emergent_train.jsonl",
        "pairs/fnc1_test.jsonl",
        "pairs/fnc1_train.jsonl",
        "polnear/dev.jsonl",
        "polnear/test.jsonl",
        "polnear/train.jsonl",
        "report.json",
    ]
    line = [x for x in res.stderr.splitlines() if x.startswith("[convert]")]
    assert (
        line
        and "documents=1007" in line[0]
        and "fnc1_train=49972" in line[0]
        and line[0].endswith("s")
    )
    docs = list(read_documents(out / "polnear" / "dev.jsonl"))  # read_documents validates each one
    assert len(docs) == 84 and all(a.provenance == "gold" for d in docs for a in d.annotations)


def test_convert_report(converted):
    out, _ = converted
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    pn = report["polnear"]
    assert {s: v["documents"] for s, v in pn["splits"].items()} == {
        "train": 839,
        "dev": 84,
        "test": 84,
    }
    assert pn["span_problem_rate"] <= 0.005 and len(pn["span_problems"]) == sum(
        v["span_problems"] for v in pn["splits"].values()
    )
    assert len(pn["argument_problems"]) == 3 and all(
        "message" in p for p in pn["argument_problems"]
    )
    assert (
        pn["ignored_roles"] == {"Discard": 421, "Discuss": 782} and len(pn["merged_articles"]) == 1
    )
    pairs = report["pairs"]
    assert pairs["fnc1_train"]["pairs"] == 49972 and pairs["fnc1_test"]["pairs"] == 25413
    for split, against in (("train", "fnc1_test"), ("test", "fnc1_train")):
        r = pairs[f"emergent_{split}"]
        assert r["deduplicated_against"] == [against] and r["removed_overlap"] > 0
        assert r["pairs"] + r["removed_overlap"] == r["read"] == {"train": 2071, "test": 524}[split]


def test_emergent_files_share_no_headline_with_the_other_side(converted):
    out, _ = converted
    fnc1_train = {normalise_text(p.claim) for p in read_pairs(out / "pairs" / "fnc1_train.jsonl")}
    fnc1_test = {normalise_text(p.claim) for p in read_pairs(out / "pairs" / "fnc1_test.jsonl")}
    assert (
        not {normalise_text(p.context) for p in read_pairs(out / "pairs" / "emergent_test.jsonl")}
        & fnc1_train
    )
    assert (
        not {normalise_text(p.context) for p in read_pairs(out / "pairs" / "emergent_train.jsonl")}
        & fnc1_test
    )


def test_params_section():
    p = load_section(ConvertParams, "convert", ROOT / "params.yaml")
    assert p.polnear_splits == ("train", "dev", "test") and p.emergent_dedup == {
        "train": ["test"],
        "test": ["train"],
    }
    with pytest.raises(ParamsError, match="emergent_dedup"):
        ConvertParams(("train",), {"dev": ["train"]}, 0.0).validate()


# --- bad input -------------------------------------------------------------------------------


def tiny_raw(root: Path, ann: str, text: str = "Smith said it rained.") -> Path:
    """A minimal raw/ tree: one PolNeAR article, two FNC-1 pairs per split, one Emergent pair per split."""
    split = root / "polnear" / "data" / "train"
    (split / "text").mkdir(parents=True)
    (split / "attributions").mkdir()
    (split / "text" / "a_2016-01-01_x.txt").write_text(text, encoding="utf-8")
    (split / "attributions" / "a_2016-01-01_x_ab12.ann").write_text(ann, encoding="utf-8")
    (root / "fnc1").mkdir()
    (root / "emergent").mkdir()
    for name, stances, bodies in (
        ("train", "train_stances.csv", "train_bodies.csv"),
        ("test", "competition_test_stances.csv", "competition_test_bodies.csv"),
    ):
        rows = [
            ["Headline", "Body ID", "Stance"],
            [f"{name} headline", "1", "agree"],
            ["Other", "1", "unrelated"],
        ]
        write_csv(root / "fnc1" / stances, rows)
        write_csv(
            root / "fnc1" / bodies,
            [["Body ID", "articleBody"], ["1", "A body\nwith two lines."]],
        )
    header = [
        "",
        "claimHeadline",
        "articleHeadline",
        "articleHeadlineStance",
        "articleId",
        "claimId",
    ]
    write_csv(
        root / "emergent" / "url-versions-2015-06-14-clean-train.csv",
        [header, ["0", "C", "test headline", "for", "a", "c1"]],
    )
    write_csv(
        root / "emergent" / "url-versions-2015-06-14-clean-test.csv",
        [header, ["1", "C", "Fresh", "against", "b", "c2"]],
    )
    return root


def write_csv(path: Path, rows: list[list[str]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)


GOOD_ANN = "T1\tSource 0 5\tSmith\nT2\tCue 6 10\tsaid\nT3\tContent 11 20\tit rained\nE1\tSource:T1 Cue:T2 Content:T3\n"
ONLY_TRAIN = ConvertParams(("train",), {"train": ["test"], "test": ["train"]}, 0.005)
LENIENT = ConvertParams(("train",), {"train": ["test"], "test": ["train"]}, 1.0)


def test_tiny_convert_dedups_emergent(tmp_path):
    report = convert(tiny_raw(tmp_path / "raw", GOOD_ANN), tmp_path / "out", ONLY_TRAIN)
    assert report["pairs"]["emergent_train"]["removed_ids"] == [
        "emergent:0"
    ]  # = an FNC-1 test headline
    assert report["pairs"]["emergent_test"]["removed_overlap"] == 0
    (doc,) = read_documents(tmp_path / "out" / "polnear" / "train.jsonl")
    assert [r.stance for r in doc.annotations[0].relations] == ["asserts"]


def test_span_past_the_text_is_reported(tmp_path):
    ann = GOOD_ANN + "T4\tSource 15 40\tbeyond\n"
    report = convert(tiny_raw(tmp_path / "raw", ann), tmp_path / "out", LENIENT)
    (problem,) = report["polnear"]["span_problems"]
    assert (problem["tid"], problem["start"], problem["end"], problem["found"]) == (
        "T4",
        15,
        40,
        "ained.",
    )
    assert "a_2016-01-01_x_ab12.ann:5: T4 [15, 40)" in problem["message"]
    saved = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert saved["polnear"]["span_problems"] == report["polnear"]["span_problems"]
    (doc,) = read_documents(tmp_path / "out" / "polnear" / "train.jsonl")
    assert [s.id for s in doc.annotations[0].spans] == ["T1", "T3"]


def test_too_many_span_problems_fail(tmp_path):
    ann = GOOD_ANN + "T4\tSource 15 40\tbeyond\n"
    with pytest.raises(CorpusError, match=r"1 of 3 PolNeAR span fragments \(33\.33%\)"):
        convert(tiny_raw(tmp_path / "raw", ann), tmp_path / "out", ONLY_TRAIN)


def test_malformed_ann_line_fails_the_stage_naming_file_and_line(tmp_path):
    raw = tiny_raw(tmp_path / "raw", GOOD_ANN + "this is not brat\n")
    params = tmp_path / "params.yaml"
    params.write_text(
        "convert:\n  polnear_splits: [train]\n  emergent_dedup: {train: [test], test: [train]}\n"
        "  max_span_problem_rate: 0.005\n",
        encoding="utf-8",
    )
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.sources.convert",
            str(raw),
            str(tmp_path / "out"),
            "--params",
            str(params),
        ],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1
    assert "a_2016-01-01_x_ab12.ann:5: malformed line 'this is not brat'" in res.stderr
    assert not (tmp_path / "out" / "report.json").exists()
