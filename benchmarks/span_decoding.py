"""What each span-decoding step buys: the trained tagger decoded five ways on the validation
articles (the split its thresholds are fitted on; never a test split), then linked and
classified as ``predict`` does.

The steps, on top of constrained Viterbi (always on):

- ``join``: a ``B-X`` right after a span of X on the same line continues it
  (:func:`pipelines.models.encoding.decode_words`);
- ``thresholds``: spans scoring below their label's threshold are dropped (fitted on these
  articles by ``train_tagger``, so their gain here is an upper bound; the README's test-set
  table is the honest figure);
- ``trim``: a span does not end with the punctuation its label's training spans leave out
  (read off the training annotations by ``train_tagger``).

Per variant: exact and overlap F1 per label, end-to-end relation F1 (exact / overlap), the
spans and relations predicted, and the seconds the linking + stance part took (fewer spans,
fewer pairs). Needs a default ``make pipeline`` run (``models/``, ``data/datasets/tagger``).

``python -m benchmarks.span_decoding [--max-documents 20]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, write_result
from pipelines.core import scoring
from pipelines.core.params import load_section
from pipelines.learn.dataset_rows import primary_documents
from pipelines.models.annotate import LinkParams, PredictParams, annotate_texts

LABELS = ("Source", "Claim", "Denial")
VARIANTS = (  # (name, join_same_line, thresholds, trim)
    ("Viterbi", False, False, False),
    ("+ join", True, False, False),
    ("+ thresholds", False, True, False),
    ("+ join + thresholds", True, True, False),
    ("+ join + thresholds + trim (default)", True, True, True),
)


def _f1(entry: dict[str, Any]) -> float:
    return round(float(entry["f1"]), 3)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    from datasets import load_from_disk

    from pipelines.models.inference import load_stance, load_tagger, tag_texts

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--datasets", type=Path, default=ROOT / "data/datasets/tagger")
    ap.add_argument("--tagger", type=Path, default=ROOT / "models/tagger")
    ap.add_argument("--model", type=Path, default=ROOT / "models/stance")
    ap.add_argument("--split", default="validation")
    ap.add_argument("--max-documents", type=int, default=0, help="0 = every article")
    args = ap.parse_args(argv)

    predict = load_section(PredictParams, "predict", ROOT / "params.yaml")
    link = LinkParams(
        predict.sentence_gap, predict.max_claims, predict.batch_size, predict.same_paragraph
    )
    docs = primary_documents(load_from_disk(str(args.datasets))[args.split])
    docs = docs[: args.max_documents] if args.max_documents else docs
    texts = [d.text for d in docs]
    tagger, stance = load_tagger(args.tagger), load_stance(args.model)
    fitted = tagger.span_thresholds
    rows = []
    for name, join, use_thresholds, trim in VARIANTS:
        spans = tag_texts(
            tagger,
            texts,
            link.batch_size,
            min_scores=fitted if use_thresholds else {},
            join_same_line=join,
            trim=None if trim else {},
        )
        t0 = time.perf_counter()
        out = annotate_texts(tagger, stance, texts, link, spans=spans)
        seconds = time.perf_counter() - t0
        span = scoring.span_scores(
            ((d.text, d.spans, s) for d, (s, _) in zip(docs, out, strict=True)), LABELS
        )
        rel = scoring.relation_scores(
            (d.spans, d.relations, s, r) for d, (s, r) in zip(docs, out, strict=True)
        )
        row = {"decoding": name}
        row |= {f"exact_{k}": _f1(span["exact"]["per_label"][k]) for k in LABELS}
        row |= {f"overlap_{k}": _f1(span["overlap"]["per_label"][k]) for k in LABELS}
        row |= {"relations_exact": _f1(rel["exact"]), "relations_overlap": _f1(rel["overlap"])}
        row |= {
            "spans": sum(len(s) for s, _ in out),
            "relations": sum(len(r) for _, r in out),
            "link_and_stance_s": round(seconds, 1),
        }
        print(row, flush=True)
        rows.append(row)
    write_result(
        "span_decoding",
        rows,
        {
            "articles": len(docs),
            "split": args.split,
            "thresholds": ", ".join(f"{k} {v}" for k, v in sorted(fitted.items())) or "none",
            "trim": ", ".join(f"{k} {v}" for k, v in sorted(tagger.span_trim.items())) or "none",
        },
        notes=(
            f"the trained tagger on the {args.split} split's primary-annotator articles (where "
            "its thresholds were fitted: their gain here is an upper bound), decoded five ways; "
            "F1 per label (exact offsets, or per-token overlap) and end-to-end Source->Claim "
            "relation F1; link_and_stance_s = linking + stance seconds for all articles"
        ),
    )
    return rows


if __name__ == "__main__":
    main()
