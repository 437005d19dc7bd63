"""Sentence embeddings from the packaged all-MiniLM-L6-v2, for the relatedness stage.

A headline and a body sentence that say the same thing in other words share few stems, and
word overlap misses them; the sentence-embedding cosine does not. all-MiniLM-L6-v2 is a
sentence-embedding model (mean-pooled token states, unit length), so its cosine is used as
shipped, without fine-tuning. Each distinct text is embedded once: FNC-1's ~50k headline/body
pairs hold ~20k distinct sentences. The weights are pinned by their digest, which the
relatedness stage stores beside its coefficients.

Heavy libraries (torch, transformers) are imported inside functions only; the model loads on
first use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.models.encoding import resolve_base_model
from pipelines.models.runtime import weights_digest

log = logging.getLogger("claimtrace.embedding")  # under the stage logs' handler
MAX_TOKENS = 64  # a news sentence is ~30 word pieces; a longer one is cut (its start says most)
BATCH = 128
PROGRESS_EVERY = 4096  # texts between progress lines


@dataclass
class SentenceEmbedder:
    """Unit-length sentence vectors of ``name`` (a packaged-model alias, Hub id or folder)."""

    name: str
    _model: Any = field(default=None, repr=False)
    _tokenizer: Any = field(default=None, repr=False)
    _path: str = field(default="", repr=False)
    _digest: str = field(default="", repr=False)

    def _load(self) -> None:
        if self._model is None:
            from transformers import AutoModel, AutoTokenizer

            self._path = resolve_base_model(self.name)
            self._tokenizer = AutoTokenizer.from_pretrained(self._path, use_fast=True)
            self._model = AutoModel.from_pretrained(self._path, use_safetensors=True).eval()

    def digest(self) -> str:
        """The weights' digest (see :func:`pipelines.models.runtime.weights_digest`)."""
        self._load()
        if not self._digest:
            self._digest = weights_digest(Path(self._path))
        return self._digest

    def embed(self, texts: Iterable[str]) -> dict[str, Any]:
        """A float32 unit vector per distinct text; texts run in batches of similar length."""
        import numpy as np
        import torch

        self._load()
        distinct = sorted(set(texts), key=len)
        out: dict[str, Any] = {}
        start, next_report = time.monotonic(), PROGRESS_EVERY
        with torch.inference_mode():
            for i in range(0, len(distinct), BATCH):
                batch = distinct[i : i + BATCH]
                enc = self._tokenizer(
                    batch, padding=True, truncation=True, max_length=MAX_TOKENS,
                    return_tensors="pt",
                )  # fmt: skip
                states = self._model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
                vectors = torch.nn.functional.normalize(pooled, dim=-1).numpy()
                out.update(zip(batch, vectors.astype(np.float32), strict=True))
                if len(out) >= next_report:
                    log.info("embedded %d/%d sentences", len(out), len(distinct))
                    next_report += PROGRESS_EVERY
        if len(distinct) >= PROGRESS_EVERY:
            log.info("embedded %d sentences in %.0f s", len(distinct), time.monotonic() - start)
        return out
