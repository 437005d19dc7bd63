"""Is a claim related to a context at all? Lexical features and a logistic regression.

The first of the two stages for headline/body pairs (FNC-1, Emergent, or any ``classify`` line
without a source): relatedness is nearly solved by word overlap (the FNC-1 winners reach 0.975
accuracy with lexical features), so the transformer is spent on related pairs only.

The features weight each claim word by its inverse document frequency over the training
contexts, and give a word never seen in training the highest weight: new topics arrive with
new names, and a name shared by claim and body is the strongest sign that they are related
(scikit-learn's TF-IDF drops such words, which cost two points of accuracy on FNC-1 test).

Word overlap misses a body that retells the headline in other words; the cosine between the
packaged MiniLM's sentence embeddings of the claim and of each context sentence
(:mod:`pipelines.models.embedding`) catches it: with it, grouped 5-fold cross-validation on
FNC-1/Emergent training pairs went from 0.974 to 0.982 accuracy (README trade-offs).

The model is a standardised logistic regression stored as JSON (weights, scaling, the document
frequencies and which sentence embedder, pinned by its weights' digest): no pickle, readable,
applied without scikit-learn's estimators.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any

from pipelines.core.text import split_sentences
from pipelines.models.embedding import SentenceEmbedder

FILE = "relatedness.json"
FEATURES: tuple[str, ...] = (
    "idf_coverage",  # share of the claim's IDF mass found anywhere in the context
    "best_sentence",  # ... in the best-matching sentence
    "top3_sentences",  # ... mean of the three best sentences
    "lead_coverage",  # ... in the first three sentences
    "bigram_overlap",  # share of claim bigrams found in the context
    "word_overlap",  # share of claim words (unweighted) found in the context
    "rare_found",  # share of the claim's rare words (idf > RARE_IDF) found in the context
    "has_rare",  # whether the claim has rare words at all
    "log_context_words",
    "log_claim_words",
    "embedding_best",  # cosine of the claim and its closest context sentence
    "embedding_top3",  # ... mean over the three closest
    "embedding_mean",  # ... mean over every context sentence
    "embedding_centroid",  # cosine of the claim and the context sentences' mean vector
)
RARE_IDF = 6.0
_WORD = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def words(text: str) -> list[str]:
    """Lower-cased content words, crudely stemmed (claims and bodies inflect the same events)."""
    stop = _stop_words()
    return [_stem(w) for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in stop]


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


@dataclass
class DocumentFrequency:
    """Document frequencies of stemmed words over ``n`` training texts; unseen words rank rarest."""

    n: int = 0
    df: dict[str, int] = field(default_factory=dict)

    @classmethod
    def fit(cls, texts: Iterable[str]) -> DocumentFrequency:
        counts: Counter[str] = Counter()
        n = 0
        for text in texts:
            counts.update(set(words(text)))
            n += 1
        return cls(n, dict(counts))

    def idf(self, word: str) -> float:
        return math.log((self.n + 1) / (self.df.get(word, 0) + 1)) + 1.0


@dataclass(frozen=True)
class _Context:
    """A context's words, once per distinct context (FNC-1 pairs share 1,683 bodies)."""

    texts: list[str]  # the sentences (embedded)
    sentences: list[set[str]]  # their words
    all_words: frozenset[str]
    lead: frozenset[str]
    bigrams: frozenset[tuple[str, str]]
    n_words: int


def _context(text: str) -> _Context:
    texts = split_sentences(text) or [text]
    sents = [words(s) for s in texts]
    flat = [w for s in sents for w in s]
    return _Context(
        texts=texts,
        sentences=[set(s) for s in sents],
        all_words=frozenset(flat),
        lead=frozenset(w for s in sents[:3] for w in s),
        bigrams=frozenset(pairwise(flat)),
        n_words=len(flat),
    )


def pair_features(
    claim: str, ctx: _Context, df: DocumentFrequency, vectors: dict[str, Any]
) -> list[float]:
    """The :data:`FEATURES` of one (claim, context) pair; ``vectors`` holds the unit sentence
    embeddings of the claim and of the context's sentences."""
    claim_words = words(claim)
    distinct = set(claim_words)
    weight = {w: df.idf(w) for w in distinct}
    mass = sum(weight.values()) or 1.0

    def covered(found: Iterable[str]) -> float:
        return sum(weight[w] for w in distinct.intersection(found)) / mass

    per_sentence = sorted((covered(s) for s in ctx.sentences), reverse=True) or [0.0]
    bigrams = set(pairwise(claim_words))
    rare = [w for w in distinct if weight[w] > RARE_IDF]
    return [
        covered(ctx.all_words),
        per_sentence[0],
        sum(per_sentence[:3]) / len(per_sentence[:3]),
        covered(ctx.lead),
        len(bigrams & ctx.bigrams) / len(bigrams) if bigrams else 0.0,
        len(distinct & ctx.all_words) / len(distinct) if distinct else 0.0,
        sum(w in ctx.all_words for w in rare) / len(rare) if rare else 1.0,
        float(bool(rare)),
        math.log1p(ctx.n_words),
        math.log1p(len(distinct)),
        *_embedding_features(vectors[claim], [vectors[s] for s in ctx.texts]),
    ]


def _embedding_features(claim: Any, sentences: Sequence[Any]) -> list[float]:
    import numpy as np

    matrix = np.asarray(sentences, dtype=np.float32)
    cos = np.sort(matrix @ claim)[::-1]
    centroid = matrix.mean(axis=0)
    norm = float(np.linalg.norm(centroid)) or 1.0
    return [float(cos[0]), float(cos[:3].mean()), float(cos.mean()), float(centroid @ claim) / norm]


def feature_matrix(
    claims: Sequence[str],
    contexts: Sequence[str],
    df: DocumentFrequency,
    embedder: SentenceEmbedder,
) -> list[list[float]]:
    """The :data:`FEATURES` of each pair; each distinct context is split and each distinct
    sentence embedded once (FNC-1 pairs share bodies and headlines)."""
    cache = {context: _context(context) for context in dict.fromkeys(contexts)}
    vectors = embedder.embed([*claims, *(s for ctx in cache.values() for s in ctx.texts)])
    return [
        pair_features(claim, cache[context], df, vectors)
        for claim, context in zip(claims, contexts, strict=True)
    ]


@dataclass
class RelatednessModel:
    """P(related | claim, context): standardised features, then a logistic regression."""

    df: DocumentFrequency
    embedder: SentenceEmbedder
    embedder_digest: str  # the weights the coefficients were fitted with
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    threshold: float = 0.5

    def probabilities(self, claims: Sequence[str], contexts: Sequence[str]) -> list[float]:
        if not claims:
            return []
        if (found := self.embedder.digest()) != self.embedder_digest:
            raise ValueError(
                f"relatedness stage: sentence embedder {self.embedder.name!r} has weights "
                f"{found}, the stage was fitted with {self.embedder_digest}: install the same "
                "model or retrain the stance model (dvc repro train_stance)"
            )
        out = []
        for row in feature_matrix(claims, contexts, self.df, self.embedder):
            z = self.intercept + sum(
                c * (x - m) / s
                for c, x, m, s in zip(self.coef, row, self.mean, self.scale, strict=True)
            )
            out.append(1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "embedder": self.embedder.name,
            "embedder_digest": self.embedder_digest,
            "mean": self.mean,
            "scale": self.scale,
            "coef": self.coef,
            "intercept": self.intercept,
            "threshold": self.threshold,
            "documents": self.df.n,
            "document_frequency": dict(sorted(self.df.df.items())),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RelatednessModel:
        if list(data["features"]) != list(FEATURES):
            raise ValueError(
                f"relatedness model features {data['features']} differ from this code's "
                f"{list(FEATURES)}: retrain the stance model (dvc repro train_stance)"
            )
        return cls(
            df=DocumentFrequency(int(data["documents"]), dict(data["document_frequency"])),
            embedder=SentenceEmbedder(str(data["embedder"])),
            embedder_digest=str(data["embedder_digest"]),
            mean=list(data["mean"]),
            scale=list(data["scale"]),
            coef=list(data["coef"]),
            intercept=float(data["intercept"]),
            threshold=float(data["threshold"]),
        )

    @classmethod
    def load(cls, folder: str | Path) -> RelatednessModel | None:
        """The model saved in a stance model folder, or None if it has none."""
        path = Path(folder) / FILE
        if not path.is_file():
            return None
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
