"""Deterministic synthetic news-like data for the benchmarks (no corpus needed, any size)."""

from __future__ import annotations

import random
from typing import Any

WORDS = [
    "the",
    "council",
    "minister",
    "report",
    "bridge",
    "budget",
    "plan",
    "election",
    "campaign",
    "police",
    "court",
    "city",
    "state",
    "government",
    "officials",
    "agency",
    "company",
    "market",
    "prices",
    "workers",
    "health",
    "school",
    "hospital",
    "vote",
    "law",
    "tax",
    "energy",
    "water",
    "road",
    "safe",
    "new",
    "old",
    "large",
    "small",
    "public",
    "private",
    "local",
    "national",
    "said",
    "according",
    "claims",
    "denied",
    "confirmed",
    "yesterday",
    "today",
    "week",
    "month",
    "year",
    "after",
    "before",
    "during",
    "about",
    "over",
    "under",
    "with",
    "without",
    "against",
    "for",
    "reported",
    "announced",
    "warned",
    "suggested",
    "argued",
    "insisted",
    "noted",
    "added",
    "explained",
    "revealed",
]
NAMES = (
    "Maria Lopez",
    "the mayor",
    "a spokesperson",
    "John Smith",
    "the ministry",
    "Dr. Chen",
    "the union",
)
STANCES = ("asserts", "denies", "unconfirmed", "unrelated")


def sentence(rng: random.Random, lo: int = 6, hi: int = 18) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    return " ".join(words).capitalize() + "."


def stance_rows(n: int, seed: int = 13) -> list[dict[str, Any]]:
    """Pairs with contexts of very different lengths (1 to 8 sentences), as in the real data."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        source = rng.choice(NAMES)
        claim = sentence(rng, 5, 14)
        context = " ".join(sentence(rng) for _ in range(rng.randint(0, 7)))
        context = f"{context} {source} said {claim.lower()}".strip()
        rows.append(
            {
                "id": f"s{i}",
                "claim": claim,
                "context": context,
                "source": source,
                "stance": STANCES[i % 4],
                "group": f"g{i}",
                "subset": "synthetic",
                "origin": "benchmark",
                "generated": False,
                "annotator": "synthetic",
            }
        )
    return rows


def article(rng: random.Random, sentences: int) -> tuple[str, list[tuple[int, int, str]]]:
    """An article where some sentences are attributions "<Source> said <claim>." (spans included)."""
    text, spans = "", []
    for _ in range(sentences):
        if text:
            text += " "
        if rng.random() < 0.4:
            source, claim = rng.choice(NAMES), sentence(rng, 4, 12)[:-1].lower()
            s0 = len(text)
            text += f"{source} said {claim}."
            spans.append((s0, s0 + len(source), "Source"))
            c0 = s0 + len(source) + len(" said ")
            spans.append((c0, c0 + len(claim), "Claim"))
        else:
            text += sentence(rng)
    return text, spans


def tagger_rows(n: int, seed: int = 13) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        text, spans = article(rng, rng.randint(3, 25))
        rows.append(
            {
                "id": f"a{i}",
                "group": f"a{i}",
                "subset": "synthetic",
                "origin": "benchmark",
                "annotator": "synthetic",
                "primary": True,
                "text": text,
                "span_starts": [s for s, _, _ in spans],
                "span_ends": [e for _, e, _ in spans],
                "span_labels": [lab for _, _, lab in spans],
                "relation_sources": [],
                "relation_claims": [],
                "relation_stances": [],
            }
        )
    return rows


def dataset_dict(task: str, n: int, seed: int = 13) -> Any:
    """A DatasetDict shaped like build_dataset's output (train + a small validation split)."""
    from pipelines.learn.dataset_rows import stance_features, tagger_features, to_dataset_dict

    rows = stance_rows(n + 8, seed) if task == "stance" else tagger_rows(n + 4, seed)
    features = stance_features() if task == "stance" else tagger_features()
    k = 8 if task == "stance" else 4
    return to_dataset_dict({"train": rows[:n], "validation": rows[n : n + k]}, features)
