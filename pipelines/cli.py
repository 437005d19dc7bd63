"""The ``claimtrace`` command: one sub-command per stage or tool, each a thin wrapper.

Stage modules import their heavy dependencies (torch, transformers, Label Studio SDK) inside
functions, so ``claimtrace --help`` stays fast and no model is loaded at import time. This is
also where the annotation side meets the model side: ``claimtrace studio push --predictions``
gets its predictors from here, so the studio code never imports the model code.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import typer

from pipelines.studio import cli as studio_cli
from pipelines.studio.server import StudioError
from pipelines.studio.sync import FunctionPredictor, Predictor

app = typer.Typer(
    help="claimtrace: news articles -> claim-attribution corpus -> models.", no_args_is_help=True
)

# command name -> module exposing ``command`` (a typer-compatible function)
COMMANDS = {
    "fetch": "pipelines.sources.fetch",
    "ingest": "pipelines.sources.ingest",
    "convert": "pipelines.sources.convert",
    "build-dataset": "pipelines.learn.build_dataset",
    "train-stance": "pipelines.learn.train_stance",
    "train-tagger": "pipelines.learn.train_tagger",
    "evaluate": "pipelines.learn.evaluate",
    "classify": "pipelines.use.classify",
    "predict": "pipelines.use.predict",
    "publish": "pipelines.use.publish",
}

for _name, _module in COMMANDS.items():
    app.command(_name)(importlib.import_module(_module).command)


def rules_predictor() -> Predictor:
    """Pre-annotations by the rule-based annotator (``--predictions rules``)."""
    from pipelines.models import rules

    return FunctionPredictor(name="rules", version=rules.VERSION, annotate=rules.annotate)


def model_predictor(tagger: Path | None = None, model: Path | None = None) -> Predictor:
    """Pre-annotations by the trained models (``--predictions model [--tagger DIR] [--model DIR]``,
    default: params.yaml's ``predict`` section); a missing model is a one-line StudioError."""
    from pipelines.use.classify import ModelMissing
    from pipelines.use.predict import predictor

    try:
        return predictor(tagger=tagger, model=model)
    except ModelMissing as e:
        raise StudioError(f"{e}; or push with --predictions rules") from None


def model_folders(tagger: Path | None = None, model: Path | None = None) -> list[Path]:
    """The two folders ``model_predictor`` reads (same defaults): the ML backend watches them."""
    from pipelines.core.params import load_section
    from pipelines.models.annotate import PredictParams

    if tagger and model:
        return [tagger, model]
    try:
        p = load_section(PredictParams, "predict", Path("params.yaml"))
    except FileNotFoundError:
        raise StudioError(
            "params.yaml not found: run from the project folder, or pass --tagger and --model"
        ) from None
    return [tagger or Path(p.tagger), model or Path(p.model)]


studio_cli.PREDICTORS.update(rules=rules_predictor, model=model_predictor)
studio_cli.MODEL_FOLDERS.update(model=model_folders)
app.add_typer(studio_cli.app, name="studio")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
