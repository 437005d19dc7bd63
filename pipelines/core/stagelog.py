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
def stage(name: str, fail_on: tuple[type[Exception], ...] = ()) -> Iterator[dict[str, Any]]:
    """Time a stage; the caller fills the yielded dict with counts, printed at the end.

    An error of a ``fail_on`` type (bad input, whose message names the culprit) is logged and
    ends the command with exit code 1, without a traceback and without the counts line.
    """
    setup_logging()
    counts: dict[str, Any] = {}
    t0 = time.perf_counter()
    try:
        yield counts
    except fail_on as e:
        log.error("%s", e)
        raise typer.Exit(code=1) from e
    seconds = time.perf_counter() - t0
    parts = ", ".join(f"{k}={v}" for k, v in counts.items())
    print(f"[{name}] {parts}{', ' if parts else ''}{seconds:.1f}s", file=sys.stderr, flush=True)
