"""Robustness: fuzzed parsers of outside data, a full disk, and a DVC stage killed mid-run.

Property of every parser fed with outside data (brat .ann, FNC-1 CSV, Label Studio export JSON,
the JSONL inputs of classify/predict): it either succeeds with valid output or raises its
documented error type (a ``ValueError`` subclass) whose message names the file (and line/row);
never any other exception, and never a partial output file (the destination is absent or the
previous complete version). HTML/txt/jsonl ingest is fuzzed in tests/test_ingest.py.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from pipelines.core.document import (
    LABELS,
    STANCES,
    Article,
    read_articles,
    read_documents,
    read_pairs,
    validate,
    write_articles,
    write_documents,
    write_pairs,
)
from pipelines.core.io import InputError, LineHandler, stream_jsonl, write_jsonl
from pipelines.sources.corpora import CorpusError
from pipelines.sources.corpora.fnc1 import STANCE_MAP, load_fnc1
from pipelines.sources.corpora.polnear import PolnearReport, load_polnear
from pipelines.sources.ingest import IngestParams
from pipelines.sources.ingest import run as ingest_run
from pipelines.studio.labeling import LABELS_NAME, TEXT_NAME
from pipelines.studio.sync import tasks_to_documents
from pipelines.use.classify import parse_pair
from pipelines.use.predict import parse_article

ROOT = Path(__file__).resolve().parents[1]
# no shrinking: a failure is reported as found, so a failing run stays within seconds, not minutes;
# CLAIMTRACE_FUZZ_EXAMPLES=1000 for a deeper run by hand
FUZZ = settings(
    max_examples=int(os.environ.get("CLAIMTRACE_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
PREVIOUS = b'{"previous": "complete version"}\n'

# arbitrary JSON values, to put where a parser expects something else
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
# text with the characters parsers trip over: tabs, CR/LF, quotes, NUL, astral, lone surrogates
TRICKY = st.text(
    st.characters(codec=None, blacklist_categories=())
    | st.sampled_from("\t\r\n\"',;#\x00\u2028😀"),
    max_size=40,
)


def assert_clear_error(
    error: BaseException, allowed: tuple[type[BaseException], ...], *names: str
) -> None:
    """The documented error type, and a message naming the file it came from."""
    assert isinstance(error, allowed), f"{type(error).__name__} escaped: {error!r}"
    assert any(n in str(error) for n in names), f"error does not name the file {names}: {error}"


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the valid value, sometimes any JSON value in its place."""
    return st.one_of(valid, valid, valid, JSON)


# --- brat .ann (PolNeAR importer) ----------------------------------------------------------------


@st.composite
def brat_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """An article text and a .ann file: mostly well-formed records (right or wrong offsets), some junk."""
    text = draw(
        st.text(st.characters(codec="utf-8") | st.sampled_from("\n \t"), min_size=0, max_size=60)
    )
    n = len(text)
    lines = []
    for i in range(1, draw(st.integers(0, 8)) + 1):
        kind = draw(st.sampled_from(["T", "T", "T", "Tmulti", "E", "#", "junk", "blank"]))
        if kind.startswith("T"):
            role = draw(
                st.sampled_from(
                    ["Source", "Content", "Content2", "Cue", "Attribution", "Discard", "Weird"]
                )
            )
            frags = []
            for _ in range(draw(st.integers(2, 3)) if kind == "Tmulti" else 1):
                s = draw(st.integers(0, n + 2))
                e = draw(st.integers(0, n + 3))
                frags.append((s, e))
            body = draw(st.one_of(st.just(" ".join(text[s:e] for s, e in frags)), TRICKY))
            offsets = ";".join(f"{s} {e}" for s, e in frags)
            lines.append(f"T{draw(st.integers(1, 9))}\t{role} {offsets}\t{body}")
        elif kind == "E":
            args = draw(
                st.lists(
                    st.builds(
                        lambda r, t: f"{r}:T{t}",
                        st.sampled_from(
                            ["Attribution", "Source", "Content", "Cue", "Bad role", ""]
                        ),
                        st.integers(1, 9),
                    ),
                    max_size=4,
                )
            )
            lines.append(f"E{i}\t" + " ".join(args))
        elif kind == "#":
            lines.append(f"#{i}\tAnnotatorNotes T1\t{draw(TRICKY)}")
        elif kind == "junk":
            lines.append(draw(TRICKY))
        else:
            lines.append("")
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    data = eol.join(lines).encode("utf-8", "surrogatepass")
    return text, draw(st.one_of(st.just(data), st.just(data), st.binary(max_size=80)))


def write_polnear(root: Path, text: str, ann: bytes) -> Path:
    split = root / "data" / "train"
    (split / "text").mkdir(parents=True)
    (split / "attributions").mkdir()
    (split / "text" / "story_2016-01-01_x.txt").write_text(text, encoding="utf-8", newline="")
    path = split / "attributions" / "story_2016-01-01_x_ann1.ann"
    path.write_bytes(ann)
    return path


@FUZZ
@given(brat_files())
@example(
    (
        "He said hi.",
        b"T1\tSource 0 2\tHe\nT2\tContent 8 10\thi\nT3\tCue 3 7\tsaid\nE1\tSource:T1 Content:T2 Cue:T3",
    )
)
@example(("abc", b"\xff\xfeT1\tSource 0 1\ta"))
def test_fuzz_polnear_ann(case: tuple[str, bytes]) -> None:
    """Streamed into write_documents as the convert stage does: a failure keeps the previous file."""
    text, ann = case
    with tempfile.TemporaryDirectory() as tmp:
        path = write_polnear(Path(tmp) / "polnear", text, ann)
        out = Path(tmp) / "out" / "train.jsonl"
        out.parent.mkdir()
        out.write_bytes(PREVIOUS)
        report = PolnearReport()
        try:
            write_documents(out, load_polnear(Path(tmp) / "polnear", "train", report))
        except Exception as e:
            assert_clear_error(e, (CorpusError,), path.name)
            assert out.read_bytes() == PREVIOUS and os.listdir(out.parent) == ["train.jsonl"]
            return
        docs = list(read_documents(out))
        assert len(docs) == 1 and docs[0].article.text == text
        kept = sum(len(a.spans) for d in docs for a in d.annotations)
        assert kept == report.spans  # every span is either kept or reported as a problem


# --- FNC-1 CSV --------------------------------------------------------------------------------------


@st.composite
def fnc1_files(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """train_stances.csv and train_bodies.csv: csv-quoted rows of tricky text, sometimes raw bytes."""

    def table(header: list[str], rows: list[list[str]]) -> bytes:
        buf = io.StringIO(newline="")
        writer = csv.writer(buf)
        writer.writerow(header)
        writer.writerows(rows)
        return buf.getvalue().encode("utf-8", "surrogatepass")

    ids = st.sampled_from(["1", "2", "3", ""])
    body_header = draw(
        st.sampled_from([["Body ID", "articleBody"], ["Body ID", "articleBody"], ["Body ID"]])
    )
    bodies = draw(st.lists(st.lists(st.one_of(ids, TRICKY), min_size=1, max_size=3), max_size=4))
    stance_header = draw(
        st.sampled_from([["Headline", "Body ID", "Stance"]] * 3 + [["Headline", "Stance"]])
    )
    stances = draw(
        st.lists(
            st.lists(
                st.one_of(TRICKY, ids, st.sampled_from([*STANCE_MAP, "Agree", "neutral"])),
                min_size=0,
                max_size=4,
            ),
            max_size=4,
        )
    )
    raw = st.binary(max_size=60)
    return (
        draw(st.one_of(st.just(table(stance_header, stances)), raw)),
        draw(st.one_of(st.just(table(body_header, bodies)), raw)),
    )


@FUZZ
@given(fnc1_files())
@example((b"Headline,Body ID,Stance\nA claim,1,agree\n", b"Body ID,articleBody\n1,A body\n"))
def test_fuzz_fnc1_csv(files: tuple[bytes, bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "train_stances.csv").write_bytes(files[0])
        (Path(tmp) / "train_bodies.csv").write_bytes(files[1])
        out = Path(tmp) / "out" / "fnc1_train.jsonl"
        out.parent.mkdir()
        out.write_bytes(PREVIOUS)
        try:
            write_pairs(out, load_fnc1(tmp, "train"))
        except Exception as e:
            assert_clear_error(e, (CorpusError,), "train_stances.csv", "train_bodies.csv")
            assert out.read_bytes() == PREVIOUS and os.listdir(out.parent) == ["fnc1_train.jsonl"]
            return
        pairs = list(read_pairs(out))
        assert all(
            p.stance in (*STANCES, "unrelated") and p.claim.strip() and p.context.strip()
            for p in pairs
        )


# --- Label Studio export JSON (studio pull side) ---------------------------------------------------


@st.composite
def exported_task(draw: st.DrawFn) -> Any:
    """One task of a Label Studio JSON export: plausible structure, any field may be replaced."""
    text = draw(st.text(min_size=0, max_size=30))

    @st.composite
    def region(d: st.DrawFn) -> dict[str, Any]:
        s = d(st.integers(0, len(text) + 2))
        e = d(st.integers(0, len(text) + 2))
        value = {
            "start": d(maybe(st.just(s))),
            "end": d(maybe(st.just(e))),
            "text": d(maybe(st.just(text[s:e]))),
            "labels": d(
                maybe(st.lists(st.sampled_from([*LABELS, "Other"]), min_size=1, max_size=2))
            ),
        }
        return {
            "id": d(maybe(st.sampled_from(["a", "b", "c"]))),
            "from_name": d(maybe(st.just(LABELS_NAME))),
            "to_name": TEXT_NAME,
            "type": d(maybe(st.just("labels"))),
            "value": d(maybe(st.just(value))),
        }

    relation = st.fixed_dictionaries(
        {
            "type": st.just("relation"),
            "from_id": maybe(st.sampled_from(["a", "b", "c"])),
            "to_id": maybe(st.sampled_from(["a", "b", "c"])),
            "labels": maybe(st.lists(st.sampled_from([*STANCES, "maybe"]), max_size=2)),
        }
    )
    annotation = st.fixed_dictionaries(
        {
            "id": maybe(st.integers(1, 9)),
            "completed_by": maybe(
                st.one_of(st.integers(1, 3), st.fixed_dictionaries({"id": st.integers(1, 3)}))
            ),
            "was_cancelled": maybe(st.booleans()),
            "created_at": maybe(st.just("2026-01-01T00:00:00Z")),
            "result": maybe(st.lists(st.one_of(region(), relation, JSON), max_size=4)),
        }
    )
    data = st.fixed_dictionaries(
        {"text": maybe(st.just(text)), "article_id": maybe(st.sampled_from(["art1", "art2"]))},
        optional={"stale": maybe(st.booleans()), "title": maybe(st.text(max_size=5))},
    )
    task = st.fixed_dictionaries(
        {
            "id": st.integers(1, 99),
            "data": maybe(data),
            "annotations": maybe(st.lists(annotation, max_size=2)),
            "drafts": maybe(st.lists(JSON, max_size=1)),
        }
    )
    return draw(maybe(task))


@FUZZ
@given(st.lists(exported_task(), max_size=3))
@example(
    [
        {
            "id": 1,
            "data": {"text": "Bob said no.", "article_id": "art1"},
            "annotations": [
                {
                    "id": 1,
                    "completed_by": 1,
                    "result": [
                        {
                            "id": "a",
                            "from_name": LABELS_NAME,
                            "to_name": TEXT_NAME,
                            "type": "labels",
                            "value": {"start": 0, "end": 3, "text": "Bob", "labels": ["Source"]},
                        }
                    ],
                }
            ],
        }
    ]
)
@example([{"id": 1, "data": ["not", "a", "dict"], "annotations": []}])
@example([{"id": 1, "data": {"text": "abc", "article_id": "a"}, "annotations": ["not a dict"]}])
@example(
    [
        {
            "id": 1,
            "data": {"text": "abc", "article_id": "a"},
            "annotations": [{"id": 1, "result": ["x"]}],
        }
    ]
)
@example(
    [
        {
            "id": 1,
            "data": {"text": "abc", "article_id": "a"},
            "annotations": [{"id": 1, "completed_by": [1]}],
        }
    ]
)
@example([{"id": 1, "data": {"text": "abc", "article_id": "a"}, "drafts": 2.0, "annotations": []}])
@example(
    [
        {
            "id": 1,
            "data": {"text": "a\ud800bc", "article_id": "a"},
            "annotations": [{"id": 1, "result": []}],
        }
    ]
)
def test_fuzz_studio_export(tasks: list[Any]) -> None:
    """Pull converts each task or collects its error; what it returns is valid and writes atomically."""
    try:
        result = tasks_to_documents(tasks, {1: "ann@example.com"})
    except Exception as e:
        assert_clear_error(e, (ValueError,), "task")
        return
    assert len(result.errors) + result.stats.counts["documents"] <= max(len(tasks), 1) * 2
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "annotations.jsonl"
        out.write_bytes(PREVIOUS)
        try:
            write_documents(out, result.documents + result.stale)
        except ValueError:
            assert out.read_bytes() == PREVIOUS and os.listdir(tmp) == ["annotations.jsonl"]
            raise
        docs = list(read_documents(out))
        assert docs == [validate(d) for d in result.documents + result.stale]


# --- classify / predict JSONL inputs -------------------------------------------------------------

PAIR_LINE = st.fixed_dictionaries(
    {
        "id": maybe(st.one_of(st.text(max_size=4), st.integers())),
        "claim": maybe(TRICKY),
        "context": maybe(TRICKY),
    },
    optional={"source": maybe(TRICKY)},
)
ARTICLE_LINE = st.fixed_dictionaries({"id": maybe(st.text(max_size=4)), "text": maybe(TRICKY)})


def jsonl_lines(record: st.SearchStrategy[Any]) -> st.SearchStrategy[list[bytes]]:
    line = st.one_of(
        record.map(
            lambda r: json.dumps(r).encode()
        ),  # ASCII escapes: lone surrogates survive as \udXXX
        record.map(lambda r: json.dumps(r, ensure_ascii=False).encode("utf-8", "surrogatepass")),
        JSON.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=30).filter(lambda b: b"\n" not in b),
        st.just(b"[" * 3000 + b"]" * 3000),  # deeper than the JSON parser's recursion limit
    )
    return st.lists(line, max_size=6)


def fake_model(batch: list[Any]) -> list[dict[str, Any]]:
    """Stands in for the model (parsing is under test): adds a result field as classify does."""
    return [{**item.record, "stance": "asserts"} for item in batch]


def command_lines(command: str) -> st.SearchStrategy[tuple[str, list[bytes]]]:
    return st.tuples(
        st.just(command), jsonl_lines(PAIR_LINE if command == "classify" else ARTICLE_LINE)
    )


DEEP = b"[" * 3000 + b"]" * 3000  # nesting deeper than the JSON parser's recursion limit
SURROGATE = b'{"id": "x", "claim": "a\\ud800", "context": "b", "text": "a\\ud800"}'  # valid JSON, not UTF-8-encodable


@FUZZ
@given(st.sampled_from(["classify", "predict"]).flatmap(command_lines), st.booleans())
@example(("classify", [DEEP]), False)
@example(("predict", [SURROGATE]), False)
def test_fuzz_classify_predict_jsonl(case: tuple[str, list[bytes]], strict: bool) -> None:
    command, lines = case
    parse = parse_pair if command == "classify" else parse_article
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        src.write_bytes(b"\n".join(lines) + b"\n")
        out.write_bytes(PREVIOUS)
        try:
            counts = stream_jsonl(src, out, LineHandler(parse, fake_model, 2, strict), command)
        except Exception as e:
            assert out.read_bytes() == PREVIOUS, "a failed run changed the previous output"
            assert sorted(os.listdir(tmp)) == ["in.jsonl", "out.jsonl"], (
                "a failed run left a temporary file"
            )
            all_skipped = "lines were skipped" in str(e)  # nothing good to write: an error
            assert strict or all_skipped, f"a bad line must be skipped without --strict, got {e!r}"
            assert_clear_error(e, (InputError,), f"{src}:")
            return
        written = out.read_text(encoding="utf-8").splitlines()
        assert len(written) == counts.written and counts.written + counts.skipped == counts.lines
        assert sorted(os.listdir(tmp)) == ["in.jsonl", "out.jsonl"]


# --- disk full --------------------------------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB tmpfs where permitted (root); otherwise a folder whose writes fail with ENOSPC.

    The fallback patches ``os.fdopen`` in pipelines.core.io so the file object's ``write``
    raises ``OSError(ENOSPC)`` once 64 KiB have been written, as a full filesystem would.
    """
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = False
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount"):
        mounted = (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
                check=False,
                capture_output=True,
            ).returncode
            == 0
        )
    if mounted:
        try:
            yield mnt
        finally:
            subprocess.run(["umount", "-l", str(mnt)], check=True)
        return
    from pipelines.core import io as core_io

    real_fdopen = core_io.os.fdopen

    class Full(io.TextIOWrapper):
        budget = 64 * 1024

        def write(self, s: str) -> int:
            Full.budget -= len(s.encode("utf-8", "surrogatepass"))
            if Full.budget < 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return super().write(s)

    def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        f = real_fdopen(fd, mode, *args, **kwargs)
        return Full(f.detach(), encoding=f.encoding) if "w" in mode else f

    mp = pytest.MonkeyPatch()
    mp.setattr(core_io.os, "fdopen", fdopen)
    try:
        yield mnt
    finally:
        mp.undo()


def test_disk_full_keeps_previous_output(full_disk: Path) -> None:
    out = full_disk / "corpus" / "articles.jsonl"
    first = [Article.from_text(f"Short article number {i}.") for i in range(5)]
    write_articles(out, first)
    previous = out.read_bytes()
    big = [Article.from_text(f"Article {i}: " + "x" * 4000) for i in range(40)]  # ~160 KiB > 64 KiB
    with pytest.raises(OSError) as info:
        write_jsonl(out, ({"id": a.id, "text": a.text} for a in big))
    assert info.value.errno == errno.ENOSPC
    assert out.read_bytes() == previous
    assert os.listdir(out.parent) == ["articles.jsonl"]  # the temporary file is gone too


def test_disk_full_during_ingest_keeps_previous_corpus(full_disk: Path, tmp_path: Path) -> None:
    src = tmp_path / "articles"
    src.mkdir()
    for i in range(40):
        (src / f"a{i:02d}.txt").write_text(
            f"Story {i}. " + "The council said the bridge is safe. " * 100
        )
    out = full_disk / "articles.jsonl"
    out.write_bytes(PREVIOUS)
    with pytest.raises(OSError) as info:
        ingest_run(out, IngestParams(inputs=(str(src),), min_chars=20))
    assert info.value.errno == errno.ENOSPC
    assert out.read_bytes() == PREVIOUS
    assert os.listdir(full_disk) == ["articles.jsonl"]


# --- DVC stage interrupted -----------------------------------------------------------------------


# Throw-away DVC repos name their tools by path (this venv's dvc, and its python in the stage
# commands), so no PATH is rewritten for the code under test; the project's own dvc.yaml runs
# through `make pipeline` (tests/test_pipeline.py).
DVC = str(Path(sys.executable).parent / "dvc")


def dvc_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DVC_NO_ANALYTICS": "1",
    }


def sh(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        cmd, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-4000:]}"
    return proc.stdout + proc.stderr


def make_ingest_repo(root: Path, articles: int) -> dict[str, str]:
    """A throw-away git+DVC repo with one stage: ingest over a folder of many small articles."""
    env = dvc_env()
    (root / "articles").mkdir(parents=True)
    for i in range(articles):
        (root / "articles" / f"a{i:05d}.txt").write_text(
            f"Report {i}: the minister said the plan number {i} is sound.\n"
        )
    (root / "params.yaml").write_text("ingest:\n  inputs: [articles]\n  min_chars: 20\n")
    (root / "dvc.yaml").write_text(
        f"stages:\n  ingest:\n    cmd: {sys.executable} -m pipelines.sources.ingest out/articles.jsonl\n"
        "    params: [ingest.inputs, ingest.min_chars]\n    deps: [articles]\n    outs: [out/articles.jsonl]\n"
    )
    sh(["git", "init", "-q"], root, env)
    sh([DVC, "init", "-q"], root, env)
    return env


def _wait_for_line(log: Path, pattern: str, proc: subprocess.Popen[bytes], what: str) -> None:
    """Block until ``log`` holds a line (or a progress-bar redraw) matching ``pattern``.

    The timeout only stops a hang: the wait ends on the event, however slow the machine.
    """
    deadline = time.monotonic() + 600
    while not re.search(pattern, log.read_text(errors="replace"), re.M):
        assert proc.poll() is None, f"{what}: the command ended first:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{what}: not within 600 s:\n{log.read_text()[-3000:]}"
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_dvc_repro_killed_mid_stage(tmp_path: Path, sig: signal.Signals) -> None:
    """Killing `dvc repro` inside a stage never leaves a partial output; the next repro completes."""
    repo = tmp_path / "repo"
    env = make_ingest_repo(repo, articles=3000)
    out = repo / "out" / "articles.jsonl"
    sh([DVC, "repro", "-q"], repo, env)
    first = out.read_bytes()
    assert first.count(b"\n") == 3000

    (repo / "articles" / "new.txt").write_text(
        "A brand new story: the mayor denied the report today.\n"
    )
    log = tmp_path / "repro.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [DVC, "repro"], cwd=repo, env=env, start_new_session=True, stdout=sink, stderr=sink
        )
    try:
        # the event: ingest's progress bar is up, i.e. the stage is reading the articles
        _wait_for_line(log, r"(^|\r)ingest: ", proc, "the ingest stage never started")
        os.killpg(proc.pid, sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0

    def whole(data: bytes) -> bool:
        """The previous version, or the complete new one (the kill may land after the write)."""
        return data == first or (data.count(b"\n") == 3001 and b"brand new story" in data)

    # never a partial file: absent (DVC removes a stage's outputs before running it) or whole
    assert not out.exists() or whole(out.read_bytes())
    # dvc.lock names a whole version, which the cache restores byte for byte
    sh([DVC, "checkout", "-f", "out/articles.jsonl"], repo, env)
    assert whole(out.read_bytes())
    sh([DVC, "repro"], repo, env)
    texts = [a.text for a in read_articles(out)]
    assert len(texts) == 3001 and any("brand new story" in t for t in texts)
    status = sh([DVC, "status"], repo, env)
    assert "up to date" in status.lower() or "Data and pipelines are up to date" in status
