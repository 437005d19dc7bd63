"""``claimtrace classify``: the stance of each (claim, context[, source]) line of a JSONL file.

Input lines ``{"id", "claim", "context", "source"?}`` (``source`` must occur in ``context``);
each output line is the input plus ``"stance"`` (asserts, denies, unconfirmed, unrelated) and
``"scores"`` (label -> probability). The file is streamed (:func:`pipelines.core.io.run_stream`):
read line by line, classified in batches, written as it goes to a temporary file renamed over the
output at the end, so memory stays flat on any input size and a failed run never leaves a partial
output. A bad line is reported with its line number and skipped; with ``--strict`` it stops the
command instead. ``--shard K/N`` keeps the lines whose id hashes to shard K (:class:`pipelines.core.io.Shard`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.core.io import (
    BadInput,
    LineHandler,
    ShardOption,
    require_id,
    require_text,
    run_stream,
    shard_option,
)
from pipelines.core.params import ParamsError, load_section
from pipelines.core.stagelog import one_line_errors
from pipelines.models.runtime import RUNTIMES, UnknownRuntime, check_runtime


class ModelMissing(RuntimeError):
    """No trained model where a command looks for one; the message says how to get one."""


def require_model(path: Path, task: str, option: str) -> Path:
    """``path`` when it holds trained weights; else :class:`ModelMissing` naming it and the fix
    (checked before torch is imported, so the user sees one line, not a loader traceback)."""
    if not (path / "model.safetensors").is_file():
        raise ModelMissing(
            f"{path}: no trained {task} model (no model.safetensors); train it with "
            f"`make pipeline` (or `dvc repro train_{task}`), or pass {option} DIR"
        )
    return path


RuntimeOption = Annotated[
    str | None,
    typer.Option(help=f"{' | '.join(RUNTIMES)} (default: params runtime)", show_default=False),
]


@dataclass(frozen=True)
class ClassifyParams:
    model: str
    batch_size: int
    pairs_per_step: int  # lines read, then sorted by length and classified together
    runtime: str  # what runs the model (pipelines.models.runtime)

    def validate(self) -> None:
        if self.batch_size < 1:
            raise ParamsError("classify.batch_size must be >= 1")
        if self.pairs_per_step < 1:
            raise ParamsError("classify.pairs_per_step must be >= 1")
        if self.runtime not in RUNTIMES:
            raise ParamsError(f"classify.runtime must be one of {', '.join(RUNTIMES)}")


@dataclass(frozen=True)
class PairInput:
    record: dict[str, Any]
    claim: str
    context: str
    source: str | None


def parse_pair(record: dict[str, Any]) -> PairInput:
    """Check one classify input line (pure): id, non-empty claim and context, source in context."""
    require_id(record)
    claim, context = require_text(record, "claim"), require_text(record, "context")
    source = record.get("source")
    if source is not None:
        source = require_text(record, "source")
        if source not in context:
            raise BadInput(f"source {source[:60]!r} is not a substring of the context")
    return PairInput(record, claim, context, source)


def classify_records(model: Any, batch: list[PairInput], batch_size: int) -> list[dict[str, Any]]:
    from pipelines.models.inference import classify_pairs

    return [
        {**item.record, "stance": label, "scores": scores}
        for item, (label, scores) in zip(
            batch, classify_pairs(model, batch, batch_size), strict=True
        )
    ]


def command(
    input: Annotated[Path, typer.Argument(help="JSONL: {id, claim, context, source?} per line")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="JSONL to write (input + stance + scores)")
    ],
    model: Annotated[
        Path | None, typer.Option(help="stance model dir (default: params classify.model)")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="pairs per model batch (default: params classify.batch_size)")
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="fail on the first bad line instead of skipping it")
    ] = False,
    params: Annotated[Path, typer.Option(help="params file (section 'classify')")] = Path(
        "params.yaml"
    ),
    shard: ShardOption = None,
    runtime: RuntimeOption = None,
) -> None:
    """Classify the stance of each (claim, context, source) line: asserts, denies, unconfirmed or unrelated."""
    from pipelines.models.inference import load_stance

    part = shard_option(shard)
    p = load_section(ClassifyParams, "classify", params)
    size = batch_size or p.batch_size
    with one_line_errors(ModelMissing, UnknownRuntime):
        loaded = load_stance(
            require_model(model or Path(p.model), "stance", "--model"),
            check_runtime(runtime or p.runtime),
        )
    process = partial(classify_records, loaded, batch_size=size)
    # a step of many pairs, not one batch: batches are cut from it sorted by length, so padding
    # stays small (read 32 at a time, the same pairs took twice as long)
    handler = LineHandler(parse_pair, process, max(size, p.pairs_per_step), strict)
    run_stream("classify", "pairs", input, output, handler, part)


if __name__ == "__main__":
    typer.run(command)
