"""File input and output shared by every part: atomic writes, JSONL reading and streaming, hashes.

**Atomic writes.** Every output file or folder is written under a temporary name beside it and
renamed over the old one only when complete (``os.replace``): a crash, a full disk or a failed
``--strict`` run leaves the previous output as it was and no partial file. A replaced file keeps
its permissions; a new one gets the usual mode (``0o666`` less the umask).

**JSONL streaming** (``classify``, ``predict``): :func:`stream_jsonl` reads an input file line by
line, hands batches of parsed items to a function and writes its output records as they come, so
memory stays flat on any input size. A bad line (not JSON, not UTF-8, not writable back, or
refused by the caller's ``parse``) is reported with its line number and skipped, or under
``strict`` stops the run; a run whose every line was skipped is an error too (no empty output).
A UTF-8 byte-order mark before the first line is dropped. :func:`run_stream` adds the stage
report, the command's exit, and SIGINT/SIGTERM handling that removes the temporary output.

**Sharding** (``--shard K/N``): a :class:`Shard` keeps only the lines whose ``id`` hashes to it
(:func:`shard_of`: sha256 of the id's text, so every process and machine agrees), so N processes
share one input and their outputs, concatenated in any order and sorted by id, are the
single-process output. A line without a usable id (not JSON, no ``id``) has no shard: shard 1
reports it (skipped, or the ``--strict`` failure) and the others pass over it, so each bad line is
reported once across the N runs.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any, Generic, TypeVar

import typer
from tqdm import tqdm

from pipelines.core.stagelog import log, stage

PathLike = str | os.PathLike[str]
T = TypeVar("T")
CHUNK = 1 << 20  # bytes per read when hashing or copying


# --- atomic writes -----------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_open(path: PathLike) -> Iterator[IO[str]]:
    """A UTF-8 text file to write ``path`` through: renamed over ``path`` when the block ends,
    removed when it raises. Missing parent folders are created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yield f
        os.chmod(tmp, mode)  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: PathLike, text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


def write_json(path: PathLike, data: Any, **dumps: Any) -> None:
    """``json.dumps(data, **dumps)`` and a newline; each caller keeps its own format."""
    write_text(path, json.dumps(data, **dumps) + "\n")


def write_jsonl(path: PathLike, records: Iterable[dict[str, Any]]) -> int:
    """One JSON object per line (keys sorted, UTF-8 as is); returns the number of records."""
    n = 0
    with atomic_open(path) as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False, sort_keys=True))
            f.write("\n")
            n += 1
    return n


def replace_dir(tmp: Path, out: Path) -> None:
    """Swap the finished folder ``tmp`` into ``out``; the old output is removed only after the swap."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    try:
        tmp.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old)


@contextmanager
def atomic_dir(out: PathLike) -> Iterator[Path]:
    """An empty temporary folder beside ``out`` to build the output in; it replaces ``out`` when
    the block ends and is removed when the block raises."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the output should not be
        yield tmp
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- reading and hashing -----------------------------------------------------------------------


def read_jsonl_numbered(path: PathLike) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, dict) per non-empty line; a bad line raises naming the file and line number.
    A byte-order mark before the first line is read as one, not as part of the line."""
    with open(path, encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(
                    f"{path}:{lineno}: not valid JSON ({e.msg}, column {e.colno})"
                ) from e


def read_jsonl(path: PathLike) -> Iterator[dict[str, Any]]:
    """Yield one dict per non-empty line; a bad line raises naming the file and line number."""
    for _, record in read_jsonl_numbered(path):
        yield record


def read_records(path: PathLike, make: Callable[[dict[str, Any]], T], what: str) -> Iterator[T]:
    """``make(line)`` per JSONL line; a line of another shape (a field missing or of the wrong
    type) is a ValueError naming the file, the line and what the file should be."""
    for lineno, record in read_jsonl_numbered(path):
        try:
            yield make(record)
        except (KeyError, TypeError, AttributeError) as e:
            why = f"no field {e}" if isinstance(e, KeyError) else str(e)
            raise ValueError(f"{path}:{lineno}: not {what} ({why})") from None


def copy_hashed(src: IO[bytes], dest: Path) -> tuple[str, int]:
    """Copy a byte stream to ``dest`` while hashing it: (sha256 hex digest, bytes copied)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with open(dest, "wb") as out:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def sha256_files(paths: Iterable[PathLike]) -> str:
    """The sha256 hex digest of the files' bytes, one file after the other."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: PathLike) -> str:
    return sha256_files([path])


# --- JSONL streaming ---------------------------------------------------------------------------

MAX_DEPTH = 100  # JSON nesting a line may have; deeper would overflow the encoder's stack on output


class BadInput(ValueError):
    """One input line cannot be processed; the message says why (the caller adds where)."""


class InputError(RuntimeError):
    """A bad line under ``--strict``: names the file and line number."""


def require_id(record: dict[str, Any]) -> None:
    if "id" not in record:
        raise BadInput("missing field 'id'")
    if (
        isinstance(record["id"], bool)
        or not isinstance(record["id"], str | int)
        or record["id"] == ""
    ):
        raise BadInput(f"field 'id' must be a non-empty string or an integer, got {record['id']!r}")


def require_text(record: dict[str, Any], key: str) -> str:
    if key not in record:
        raise BadInput(f"missing field {key!r}")
    value = record[key]
    if not isinstance(value, str):
        raise BadInput(f"field {key!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise BadInput(f"field {key!r} is empty")
    return value


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


def _parse_line(raw: bytes) -> dict[str, Any]:
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
    return record


SHARD_FORMAT = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def shard_of(record_id: str | int, count: int) -> int:
    """The shard (1..``count``) an id belongs to: sha256 of ``str(id)`` in UTF-8, first 8 bytes
    as an unsigned big-endian integer, modulo ``count``, plus one. Stable across processes,
    machines and Python versions (unlike ``hash()``)."""
    digest = hashlib.sha256(str(record_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based, like GNU ``split -n l/K/N``)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"`` with 1 <= K <= N; a :class:`ValueError` with a one-line message otherwise."""
        m = SHARD_FORMAT.fullmatch(text)
        if m is None:
            raise ValueError(f"--shard must be K/N, e.g. 1/4 (shard 1 of 4), got {text!r}")
        index, count = int(m[1]), int(m[2])
        if count < 1:
            raise ValueError(f"--shard {text!r}: N (the number of shards) must be at least 1")
        if not 1 <= index <= count:
            raise ValueError(
                f"--shard {text!r}: K must be 1 to {count} (shards are numbered from 1)"
            )
        return cls(index, count)

    def owns(self, record_id: str | int) -> bool:
        return shard_of(record_id, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


# the ``--shard`` option of ``classify`` and ``predict``
ShardOption = Annotated[
    str | None,
    typer.Option(
        help="K/N: process only shard K of N (1..N), the lines whose id hashes to it (sha256); "
        "the N shards' outputs together are the whole output",
        show_default=False,
    ),
]


def shard_option(text: str | None) -> Shard | None:
    """The parsed ``--shard`` value; a bad one ends the command with a one-line error (exit 2)."""
    if text is None:
        return None
    try:
        return Shard.parse(text)
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=2) from None


@dataclass(frozen=True)
class LineHandler(Generic[T]):
    """What a stream does with its input: ``parse`` checks one JSON object (raising
    :class:`BadInput` for a bad one), ``process`` turns a batch of ``batch_size`` parsed items into
    output records; under ``strict`` a bad line stops the stream instead of being skipped."""

    parse: Callable[[dict[str, Any]], T]
    process: Callable[[list[T]], list[dict[str, Any]]]
    batch_size: int
    strict: bool


@dataclass
class StreamCounts:
    lines: int = 0
    written: int = 0
    skipped: int = 0
    other_shards: int = 0  # lines left to the other shards (not in ``lines``)
    bytes_read: int = 0


def _in_shard(record: dict[str, Any] | None, shard: Shard | None) -> bool:
    """Whether this run handles the line: every line without sharding; else the lines whose id
    hashes to the shard, and the lines without a usable id (``record`` None or refused by
    :func:`require_id`) in shard 1 only."""
    if shard is None:
        return True
    if record is not None:
        try:
            require_id(record)
        except BadInput:
            pass
        else:
            return shard.owns(record["id"])
    return shard.index == 1


def _records(
    f: IO[bytes],
    path: Path,
    counts: StreamCounts,
    handler: LineHandler[T],
    bar: Any,
    shard: Shard | None = None,
) -> Iterator[T]:
    """Parsed input items of this shard; a bad line is logged and skipped, or raises
    :class:`InputError`."""
    for lineno, raw in enumerate(f, 1):
        counts.bytes_read += len(raw)
        if lineno == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)  # an editor's byte-order mark is no content
        if not raw.strip():
            continue
        record: dict[str, Any] | None = None
        try:
            record = _parse_line(raw)
            problem = None
        except BadInput as e:
            problem = e
        if not _in_shard(record, shard):
            counts.other_shards += 1
            continue
        counts.lines += 1
        try:
            if problem is not None:
                raise problem
            assert record is not None
            yield handler.parse(record)
        except BadInput as e:
            where = f"{path}:{lineno}: {e}"
            if handler.strict:
                raise InputError(
                    f"{where} (--strict: stopped; fix the line or drop --strict to skip it)"
                ) from e
            counts.skipped += 1
            log.warning("%s; line skipped", where)


def stream_jsonl(
    in_path: Path,
    out_path: Path,
    handler: LineHandler[T],
    desc: str,
    shard: Shard | None = None,
) -> StreamCounts:
    """Read ``in_path`` line by line, process batches of parsed items, write JSONL to ``out_path``.

    Only the lines of ``shard`` when one is given. Output goes through :func:`atomic_open`: a crash, a ``--strict`` failure or a run whose every
    line was skipped leaves any previous output untouched and no partial file. The progress bar
    counts input bytes once their batch is written, so it shows work done, not lines read.
    """
    counts = StreamCounts()
    with (
        open(in_path, "rb") as f,
        atomic_open(out_path) as out,
        tqdm(total=in_path.stat().st_size, desc=desc, unit="B", unit_scale=True) as bar,
    ):

        def flush(batch: list[T]) -> None:
            for rec in handler.process(batch):
                out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                counts.written += 1
            out.flush()  # written as it goes: a batch's results leave memory at once
            bar.update(counts.bytes_read - bar.n)
            bar.set_postfix(written=counts.written, skipped=counts.skipped)

        batch: list[T] = []
        for item in _records(f, in_path, counts, handler, bar, shard):
            batch.append(item)
            if len(batch) >= handler.batch_size:
                flush(batch)
                batch = []
        if batch:
            flush(batch)
        bar.update(counts.bytes_read - bar.n)
        if counts.lines and counts.skipped == counts.lines:
            raise InputError(
                f"{in_path}: all {counts.lines} lines were skipped (see the warnings above); "
                f"nothing written to {out_path}: fix the input lines and rerun"
            )
    return counts


@contextmanager
def signals_as_exit() -> Iterator[None]:
    """SIGTERM (like Ctrl-C's SIGINT) unwinds the stack as an exception, so the ``finally`` and
    ``except`` blocks on the way (the temporary output's removal) run: the default SIGTERM action
    would end the process on the spot and leave the temporary file behind."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def handler(signum: int, frame: Any) -> None:
        raise Interrupted(signal.Signals(signum).name)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


class Interrupted(BaseException):
    """A termination signal arrived mid-run (a BaseException, like KeyboardInterrupt, so that
    no ``except Exception`` on the way swallows it)."""


def run_stream(
    name: str,
    unit: str,
    in_path: Path,
    out_path: Path,
    handler: LineHandler[T],
    shard: Shard | None = None,
) -> StreamCounts:
    """:func:`stream_jsonl` with the stage report (counts, rate) and a clean exit on bad input."""
    if not in_path.is_file():
        raise typer.BadParameter(f"{in_path}: no such file")
    if in_path.resolve() == out_path.resolve():
        raise typer.BadParameter("the output must be a different file from the input")
    with stage(name, fail_on=(InputError,)) as report:
        t0 = time.perf_counter()
        try:
            with signals_as_exit():
                counts = stream_jsonl(in_path, out_path, handler, name, shard)
        except (KeyboardInterrupt, Interrupted) as e:
            why = str(e) or "SIGINT"
            log.error("%s: interrupted (%s); %s was not written", name, why, out_path)
            raise typer.Exit(code=130 if why == "SIGINT" else 143) from None
        seconds = time.perf_counter() - t0
        if shard is not None:
            report.update(shard=str(shard), other_shards=counts.other_shards)
        report.update(lines=counts.lines, written=counts.written, skipped=counts.skipped)
        report[f"{unit}_per_s"] = round(counts.written / seconds, 2) if seconds else 0.0
    if counts.skipped:
        log.warning(
            "%d of %d lines skipped (see the warnings above); --strict makes that an error",
            counts.skipped,
            counts.lines,
        )
    return counts
