"""Importers of the public corpora (PolNeAR, FNC-1, Emergent) into the document model.

Each reads the mirror layout (``<root>/polnear/data/...``, ``<root>/fnc1/...``,
``<root>/emergent/...``, the same as ``data/raw/`` after ``fetch``) and yields
:class:`~pipelines.core.document.Document` or :class:`~pipelines.core.document.StancePair` records.
Malformed input raises :class:`CorpusError` naming the file and line; anything kept out of the
output is returned as an explicit, counted problem, never dropped silently.
"""

from __future__ import annotations

# names a local folder laid out like data/raw/ (fetch copies from it instead of downloading)
MIRROR_ENV = "CLAIMTRACE_DATA_MIRROR"


class CorpusError(ValueError):
    """A corpus file is malformed; the message names the file and line/row and what is wrong."""
