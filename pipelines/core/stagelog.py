"""Every stage says what it did: counts and seconds, on stderr, one line per stage."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

log = logging.getLogger("claimtrace")


def setup_logging(level: int = logging.INFO) -> None:
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False


@contextmanager
def one_line_errors(*types: type[Exception]) -> Iterator[None]:
    """An error of one of ``types`` (its message names the file and the fix) ends the command
    with that one line on stderr and exit code 1: a user's mistake is no traceback."""
    setup_logging()
    try:
        yield
    except types as e:
        log.error("%s", e)
        raise typer.Exit(code=1) from e


@contextmanager
def stage(name: str, fail_on: tuple[type[Exception], ...] = ()) -> Iterator[dict[str, Any]]:
    """Time a stage; the caller fills the yielded dict with counts, printed at the end.

    An error of a ``fail_on`` type (bad input, whose message names the culprit) is logged and
    ends the command with exit code 1, without a traceback and without the counts line.
    """
    counts: dict[str, Any] = {}
    t0 = time.perf_counter()
    with one_line_errors(*fail_on):
        yield counts
    seconds = time.perf_counter() - t0
    parts = ", ".join(f"{k}={v}" for k, v in counts.items())
    print(f"[{name}] {parts}{', ' if parts else ''}{seconds:.1f}s", file=sys.stderr, flush=True)
