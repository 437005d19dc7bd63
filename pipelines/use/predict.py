"""``claimtrace predict``: Claim/Source/Denial spans and Source->Claim stance relations per article.

Input lines ``{"id", "text"}``; output lines ``{"id", "text", "spans": [{"id", "label", "start",
"end", "text", "score"}], "relations": [{"source", "claim", "stance", "score"}]}`` with Python
code-point offsets (``text[start:end] == span text``). Articles are tagged whole (long ones in
overlapping windows, :func:`pipelines.models.inference.tag_text`); each Source is paired with the Claims
in its own or a nearby sentence, the pair is classified by the stance model with the same marked
context as in training (:func:`pipelines.core.text.relation_context`), and pairs predicted
``unrelated`` are dropped. Streaming, bad-line handling and ``--strict`` as in ``classify`` (:mod:`pipelines.core.io`).
"""

from __future__ import annotations

import bisect
import json
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.core.document import AnnotationSet, Article, Relation, Span
from pipelines.core.io import LineHandler, require_id, require_text, run_stream, sha256_files
from pipelines.core.params import ParamsError, load_section
from pipelines.core.stagelog import one_line_errors
from pipelines.core.text import relation_context, sentence_starts
from pipelines.use.classify import ModelMissing, require_model


@dataclass(frozen=True)
class PredictParams:
    tagger: str
    model: str
    batch_size: int
    articles_per_batch: int
    sentence_gap: int
    context_chars: int

    def validate(self) -> None:
        if (
            min(self.batch_size, self.articles_per_batch) < 1
            or self.sentence_gap < 0
            or self.context_chars < 100
        ):
            raise ParamsError(
                "predict: batch_size and articles_per_batch must be >= 1, sentence_gap >= 0, context_chars >= 100"
            )


@dataclass(frozen=True)
class ArticleInput:
    record: dict[str, Any]
    text: str


@dataclass(frozen=True)
class Candidate:
    """A (Source, Claim) pair to classify, in the form ``classify_pairs`` takes."""

    source_id: str
    claim_id: str
    claim: str
    context: str
    source: str


def parse_article(record: dict[str, Any]) -> ArticleInput:
    """Check one predict input line (pure): an id and a non-empty text."""
    require_id(record)
    return ArticleInput(record, require_text(record, "text"))


def sentence_range(starts: list[int], span: Span) -> tuple[int, int]:
    """Indices of the first and last sentence a span touches."""
    return (
        max(0, bisect.bisect_right(starts, span.start) - 1),
        max(0, bisect.bisect_right(starts, span.end - 1) - 1),
    )


def candidate_pairs(
    text: str, spans: list[Span], sentence_gap: int, context_chars: int
) -> list[Candidate]:
    """Every (Source, Claim) at most ``sentence_gap`` sentences apart, with its marked context."""
    starts = sentence_starts(text)
    where = {s.id: sentence_range(starts, s) for s in spans}
    sources = [s for s in spans if s.label == "Source" and s.text.strip()]
    claims = [s for s in spans if s.label == "Claim" and s.text.strip()]
    out = []
    for src in sources:
        for clm in claims:
            (a0, a1), (b0, b1) = where[src.id], where[clm.id]
            if max(0, max(a0, b0) - min(a1, b1)) > sentence_gap:
                continue
            context = relation_context(
                text, (src.start, src.end), (clm.start, clm.end), context_chars
            )
            out.append(Candidate(src.id, clm.id, clm.text.strip(), context, src.text.strip()))
    return out


def predict_records(
    tagger: Any, model: Any, batch: list[ArticleInput], p: PredictParams
) -> list[dict[str, Any]]:
    """Spans for each article of the batch, then all their candidate pairs classified at once."""
    from pipelines.models.inference import classify_pairs, tag_text

    spans = [tag_text(tagger, item.text, p.batch_size) for item in batch]
    candidates = [
        candidate_pairs(item.text, s, p.sentence_gap, p.context_chars)
        for item, s in zip(batch, spans, strict=True)
    ]
    flat = [c for cs in candidates for c in cs]
    labels = iter(classify_pairs(model, flat, p.batch_size) if flat else [])
    out = []
    for item, article_spans, cands in zip(batch, spans, candidates, strict=True):
        relations = []
        for cand in cands:
            label, scores = next(labels)
            if label != "unrelated":
                relations.append(
                    {
                        "source": cand.source_id,
                        "claim": cand.claim_id,
                        "stance": label,
                        "score": scores[label],
                    }
                )
        out.append(
            {**item.record, "spans": [asdict(s) for s in article_spans], "relations": relations}
        )
    return out


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
    )
    return p, load_tagger(tagger_dir), load_stance(model_dir)


def _weights_digest(*model_dirs: Path) -> str:
    """A short content hash of the models' weights: the Label Studio ``model_version``."""
    return sha256_files(f for d in model_dirs for f in sorted(d.glob("*.safetensors")))[:12]


def weights_version(tagger: Path, model: Path) -> str:
    """The name a prediction of these two models carries (Label Studio, the README's seed block)."""
    return f"claimtrace-{_weights_digest(tagger, model)}"


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
    version = weights_version(tagger or Path(p.tagger), model or Path(p.model))
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
) -> None:
    """Tag Claim/Source/Denial spans in each article and link Sources to Claims with a stance."""
    with one_line_errors(ModelMissing):
        p, loaded_tagger, loaded_model = load(params, tagger, model, batch_size)
    process = partial(predict_records, loaded_tagger, loaded_model, p=p)
    handler = LineHandler(parse_article, process, p.articles_per_batch, strict)
    run_stream("predict", "articles", input, output, handler)


if __name__ == "__main__":
    typer.run(command)
