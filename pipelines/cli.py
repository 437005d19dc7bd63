"""The ``claimtrace`` command: one sub-command per stage or tool, each a thin wrapper.

Stage modules import their heavy dependencies (torch, transformers, Label Studio SDK) inside
functions, so ``claimtrace --help`` stays fast and no model is loaded at import time.
"""

from __future__ import annotations

import importlib

import typer

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

app.add_typer(importlib.import_module("pipelines.studio.cli").app, name="studio")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
