"""``claimtrace classify``: the stance of each (claim, context[, source]) line of a JSONL file.

Input lines ``{"id", "claim", "context", "source"?}`` (``source`` must occur in ``context``);
each output line is the input plus ``"stance"`` (asserts, denies, unconfirmed, unrelated) and
``"scores"`` (label -> probability). The file is streamed: read line by line, classified in
batches, written as it goes to a temporary file renamed over the output at the end, so memory
stays flat on any input size and a failed run never leaves a partial output. A bad line is
reported with its line number and skipped; with ``--strict`` it stops the command instead.

The streaming machinery here is shared with ``claimtrace predict``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any, TypeVar

import typer
from tqdm import tqdm

from pipelines.core.params import ParamsError, load_section
from pipelines.core.stagelog import log, stage

T = TypeVar("T")


class BadInput(ValueError):
    """One input line cannot be processed; the message says why (the caller adds where)."""


class InputError(RuntimeError):
    """A bad line under ``--strict``: names the file and line number."""


@dataclass(frozen=True)
class ClassifyParams:
    model: str
    batch_size: int

    def validate(self) -> None:
        if self.batch_size < 1:
            raise ParamsError("classify.batch_size must be >= 1")


@dataclass(frozen=True)
class PairInput:
    record: dict[str, Any]
    claim: str
    context: str
    source: str | None


def require_text(record: dict[str, Any], key: str) -> str:
    if key not in record:
        raise BadInput(f"missing field {key!r}")
    value = record[key]
    if not isinstance(value, str):
        raise BadInput(f"field {key!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise BadInput(f"field {key!r} is empty")
    return value


def require_id(record: dict[str, Any]) -> None:
    if "id" not in record:
        raise BadInput("missing field 'id'")
    if (
        isinstance(record["id"], bool)
        or not isinstance(record["id"], str | int)
        or record["id"] == ""
    ):
        raise BadInput(f"field 'id' must be a non-empty string or an integer, got {record['id']!r}")


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
    from pipelines.models.encoding import classify_pairs

    return [
        {**item.record, "stance": label, "scores": scores}
        for item, (label, scores) in zip(
            batch, classify_pairs(model, batch, batch_size), strict=True
        )
    ]


# --- streaming ----------------------------------------------------------------------------------

MAX_DEPTH = (
    100  # JSON nesting a line may have; deeper values would overflow the encoder's stack on output
)


def check_tree(record: dict[str, Any]) -> None:
    """Reject what parses but cannot be written back: lone surrogates, nesting over :data:`MAX_DEPTH`.

    JSON ``"\\ud800"`` escapes decode to lone surrogates, which UTF-8 cannot encode; the record is
    echoed into the output, so every key and string in it is checked (iteratively: no recursion).
    """
    stack: list[tuple[str, Any, int]] = [("", record, 1)]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadInput(f"field {path!r} is nested too deeply (more than {MAX_DEPTH} levels)")
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as e:
                raise BadInput(
                    f"field {path!r} is not valid Unicode text (lone surrogate at offset {e.start})"
                ) from None
        elif isinstance(value, dict):
            for key, item in value.items():
                sub = f"{path}.{key}" if path else key
                try:
                    key.encode("utf-8")
                except UnicodeEncodeError:
                    raise BadInput(
                        f"a key in {path or 'the line'!r} is not valid Unicode text (lone surrogate)"
                    ) from None
                stack.append((sub, item, depth + 1))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item, depth + 1) for i, item in enumerate(value))


@dataclass
class StreamCounts:
    lines: int = 0
    written: int = 0
    skipped: int = 0


def _records(
    f: IO[bytes],
    path: Path,
    counts: StreamCounts,
    strict: bool,
    parse: Callable[[dict[str, Any]], T],
    bar: Any,
) -> Iterator[T]:
    """Parsed input items; a bad line is logged and skipped, or raises :class:`InputError`."""
    for lineno, raw in enumerate(f, 1):
        bar.update(len(raw))
        if not raw.strip():
            continue
        counts.lines += 1
        try:
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                raise BadInput(f"not UTF-8 ({e.reason} at byte {e.start})") from e
            except json.JSONDecodeError as e:
                raise BadInput(f"not valid JSON ({e.msg}, column {e.colno})") from e
            except RecursionError as e:
                # the parser recurses per nesting level: a line like "[[[[..." exhausts the stack
                raise BadInput(f"nested too deeply (more than {MAX_DEPTH} levels)") from e
            if not isinstance(record, dict):
                raise BadInput(f"expected a JSON object, got {type(record).__name__}")
            check_tree(record)
            yield parse(record)
        except BadInput as e:
            where = f"{path}:{lineno}: {e}"
            if strict:
                raise InputError(
                    f"{where} (--strict: stopped; fix the line or drop --strict to skip it)"
                ) from e
            counts.skipped += 1
            log.warning("%s; line skipped", where)


def stream_jsonl(
    in_path: Path,
    out_path: Path,
    parse: Callable[[dict[str, Any]], T],
    process: Callable[[list[T]], list[dict[str, Any]]],
    batch_size: int,
    strict: bool,
    desc: str,
) -> StreamCounts:
    """Read ``in_path`` line by line, ``process`` batches of parsed items, write JSONL to ``out_path``.

    Output goes to a temporary sibling renamed into place on success only (atomic: a crash or a
    ``--strict`` failure leaves any previous output untouched and no partial file).
    """
    counts = StreamCounts()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        with (
            open(in_path, "rb") as f,
            open(tmp, "x", encoding="utf-8") as out,
            tqdm(total=in_path.stat().st_size, desc=desc, unit="B", unit_scale=True) as bar,
        ):

            def flush(batch: list[T]) -> None:
                for rec in process(batch):
                    out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    counts.written += 1
                out.flush()  # written as it goes: a batch's results leave memory at once
                bar.set_postfix(written=counts.written, skipped=counts.skipped)

            batch: list[T] = []
            for item in _records(f, in_path, counts, strict, parse, bar):
                batch.append(item)
                if len(batch) >= batch_size:
                    flush(batch)
                    batch = []
            if batch:
                flush(batch)
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return counts


def run_stream(
    name: str,
    unit: str,
    in_path: Path,
    out_path: Path,
    parse: Callable[[dict[str, Any]], T],
    process: Callable[[list[T]], list[dict[str, Any]]],
    batch_size: int,
    strict: bool,
) -> StreamCounts:
    """:func:`stream_jsonl` with the stage report (counts, rate) and a clean exit on bad input."""
    if not in_path.is_file():
        raise typer.BadParameter(f"{in_path}: no such file")
    if in_path.resolve() == out_path.resolve():
        raise typer.BadParameter("the output must be a different file from the input")
    with stage(name) as report:
        t0 = time.perf_counter()
        try:
            counts = stream_jsonl(in_path, out_path, parse, process, batch_size, strict, name)
        except InputError as e:
            log.error("%s", e)
            raise typer.Exit(code=1) from e
        seconds = time.perf_counter() - t0
        report.update(lines=counts.lines, written=counts.written, skipped=counts.skipped)
        report[f"{unit}_per_s"] = round(counts.written / seconds, 2) if seconds else 0.0
    if counts.skipped:
        log.warning(
            "%d of %d lines skipped (see the warnings above); --strict makes that an error",
            counts.skipped,
            counts.lines,
        )
    return counts


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
) -> None:
    """Classify the stance of each (claim, context, source) line: asserts, denies, unconfirmed or unrelated."""
    from pipelines.models.encoding import load_stance

    p = load_section(ClassifyParams, "classify", params)
    size = batch_size or p.batch_size
    loaded = load_stance(model or Path(p.model))
    run_stream(
        "classify",
        "pairs",
        input,
        output,
        parse_pair,
        lambda batch: classify_records(loaded, batch, size),
        size,
        strict,
    )


if __name__ == "__main__":
    typer.run(command)
