"""``claimtrace predict``: Claim/Source/Denial spans and Source->Claim stance relations per article.

Input lines ``{"id", "text"}``; output lines ``{"id", "text", "spans": [{"id", "label", "start",
"end", "text", "score"}], "relations": [{"source", "claim", "stance", "score"}]}`` with Python
code-point offsets (``text[start:end] == span text``). The articles of a batch are tagged
together (long ones in overlapping windows, :func:`pipelines.models.inference.tag_texts`); each
Source is paired with its nearest Claims (:mod:`pipelines.models.linking`), each pair is
classified by the stance model with the same marked context as in training
(:func:`pipelines.core.text.relation_context`), a Claim keeps its most likely Source, and a
relation that denies or withholds support gets a Denial span on its cue. Streaming, bad-line
handling, ``--strict`` and ``--shard`` as in
``classify`` (:mod:`pipelines.core.io`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.core.document import AnnotationSet, Article, Relation, Span
from pipelines.core.io import (
    LineHandler,
    ShardOption,
    require_id,
    require_text,
    run_stream,
    sha256_files,
    shard_option,
)
from pipelines.core.params import load_section
from pipelines.core.stagelog import one_line_errors
from pipelines.models.annotate import LinkParams, PredictParams, annotate_texts
from pipelines.models.runtime import UnknownRuntime, check_runtime
from pipelines.use.classify import ModelMissing, RuntimeOption, require_model


@dataclass(frozen=True)
class ArticleInput:
    record: dict[str, Any]
    text: str


def parse_article(record: dict[str, Any]) -> ArticleInput:
    """Check one predict input line (pure): an id and a non-empty text."""
    require_id(record)
    return ArticleInput(record, require_text(record, "text"))


LONG_BATCH_CHARS = 100_000  # ~20 s of work on 2 cores: such a batch shows its own progress


class PhaseBars:
    """Progress bars inside one batch (a 5 MB article is one line, but some ten minutes of work):
    tagger windows, then stance pairs; gone when the batch is done."""

    def __init__(self, chars: int):
        self.chars = chars
        self.bars: dict[str, Any] = {}

    def __call__(self, phase: str, n: int) -> None:
        from tqdm import tqdm

        if phase not in self.bars:
            desc = f"predict: {self.chars:,} chars, {phase}"
            self.bars[phase] = tqdm(desc=desc, unit=phase, leave=False, mininterval=1.0)
        self.bars[phase].update(n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def predict_records(
    tagger: Any, model: Any, batch: list[ArticleInput], p: PredictParams
) -> list[dict[str, Any]]:
    """The input records with their ``spans`` and ``relations`` (:mod:`pipelines.models.annotate`)."""
    link = LinkParams(p.sentence_gap, p.max_claims, p.batch_size, p.same_paragraph)
    chars = sum(len(item.text) for item in batch)
    bars = PhaseBars(chars) if chars >= LONG_BATCH_CHARS else None
    try:
        annotated = annotate_texts(tagger, model, [item.text for item in batch], link, bars)
    finally:
        if bars is not None:
            bars.close()
    return [
        {
            **item.record,
            "spans": [asdict(s) for s in spans],
            "relations": [
                {"source": r.source, "claim": r.claim, "stance": r.stance, "score": r.score}
                for r in relations
            ],
        }
        for item, (spans, relations) in zip(batch, annotated, strict=True)
    ]


def _stance_context_chars(model_dir: Path, default: int) -> int:
    """The training-time context size when the model records it, else the params value."""
    from pipelines.models.encoding import MODEL_INFO

    info = model_dir / MODEL_INFO
    if info.is_file():
        return int(json.loads(info.read_text(encoding="utf-8")).get("context_chars", default))
    return default


def load(
    params: Path,
    tagger: Path | None = None,
    model: Path | None = None,
    batch_size: int | None = None,
    runtime: str | None = None,
) -> tuple[PredictParams, Any, Any]:
    """The predict params (command-line overrides applied) and both loaded models; a missing
    model is :class:`ModelMissing`."""
    from pipelines.models.inference import load_stance, load_tagger

    p = load_section(PredictParams, "predict", params)
    tagger_dir = require_model(tagger or Path(p.tagger), "tagger", "--tagger")
    model_dir = require_model(model or Path(p.model), "stance", "--model")
    p = replace(
        p,
        batch_size=batch_size or p.batch_size,
        context_chars=_stance_context_chars(model_dir, p.context_chars),
        runtime=check_runtime(runtime or p.runtime),
    )
    return p, load_tagger(tagger_dir, p.runtime), load_stance(model_dir, p.runtime)


# what decides a model's predictions besides its weights: the values fitted on validation (the
# stance biases, the tagger's span thresholds) and the stance model's relatedness stage
DECISION_FILES = ("claimtrace.json", "relatedness.json")


def _weights_digest(*model_dirs: Path) -> str:
    """A short content hash of the models' weights and fitted decision values: the Label Studio
    ``model_version`` (new thresholds on the same weights are a new version)."""
    return sha256_files(
        f
        for d in model_dirs
        for f in [*sorted(d.glob("*.safetensors")), *(d / n for n in DECISION_FILES)]
        if f.is_file()
    )[:12]


def weights_version(tagger: Path, model: Path, runtime: str = "torch") -> str:
    """The name a prediction of these two models carries (Label Studio, the README's seed block);
    int8 weights predict slightly differently, so their predictions say so."""
    suffix = "-int8" if runtime == "onnx-int8" else ""
    return f"claimtrace-{_weights_digest(tagger, model)}{suffix}"


@dataclass(frozen=True)
class ModelPredictor:
    """Pre-annotations from the trained models, for ``claimtrace studio push --predictions model``."""

    tagger: Any
    model: Any
    params: PredictParams
    version: str
    name: str = "model"

    def annotate(self, article: Article) -> AnnotationSet:
        (rec,) = predict_records(
            self.tagger, self.model, [ArticleInput({"id": article.id}, article.text)], self.params
        )
        return AnnotationSet(
            annotator=self.name,
            provenance="prediction",
            spans=tuple(Span(**s) for s in rec["spans"]),
            relations=tuple(
                Relation(r["source"], r["claim"], r["stance"], score=r["score"])
                for r in rec["relations"]
            ),
            model_version=self.version,
        )


def predictor(
    params: Path = Path("params.yaml"), tagger: Path | None = None, model: Path | None = None
) -> ModelPredictor:
    """The studio push hook: loads the models (``--tagger``/``--model``, else params.yaml's
    ``predict`` section) once."""
    p, loaded_tagger, loaded_model = load(params, tagger, model)
    version = weights_version(tagger or Path(p.tagger), model or Path(p.model), p.runtime)
    return ModelPredictor(loaded_tagger, loaded_model, p, version)


def command(
    input: Annotated[Path, typer.Argument(help="JSONL: {id, text} per line")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="JSONL to write (input + spans + relations)")
    ],
    tagger: Annotated[
        Path | None, typer.Option(help="span tagger dir (default: params predict.tagger)")
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="stance model dir (default: params predict.model)")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="model batch size (default: params predict.batch_size)")
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="fail on the first bad line instead of skipping it")
    ] = False,
    params: Annotated[Path, typer.Option(help="params file (section 'predict')")] = Path(
        "params.yaml"
    ),
    shard: ShardOption = None,
    runtime: RuntimeOption = None,
) -> None:
    """Tag Claim/Source/Denial spans in each article and link Sources to Claims with a stance."""
    part = shard_option(shard)
    with one_line_errors(ModelMissing, UnknownRuntime):
        p, loaded_tagger, loaded_model = load(params, tagger, model, batch_size, runtime)
    process = partial(predict_records, loaded_tagger, loaded_model, p=p)
    handler = LineHandler(parse_article, process, p.articles_per_batch, strict)
    run_stream("predict", "articles", input, output, handler, part)


if __name__ == "__main__":
    typer.run(command)
