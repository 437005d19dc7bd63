"""Stage ``evaluate``: the models beside baselines and the FNC-1 anchors, on the very same items.

Test sets are build_dataset's fixed ``test_*`` splits, so every system sees exactly the inputs
the model was built for (e.g. FNC-1 bodies cut to the sentences nearest the headline). Stance:
FNC-1 competition test (4-class macro-F1, FNC score, related-only 3-way), Emergent test
(de-duplicated; 3-way), PolNeAR test relations and the project's own gold annotations. Spans:
PolNeAR test and the gold annotations (P/R/F1 per label, exact and token overlap). Systems: our
models, the majority class and TF-IDF + logistic regression baselines (fit on the ``train``
split only), the rule-based annotator and the three published FNC-1 systems (row-aligned with
the competition test set).

Outputs (under ``metrics/``): ``stance.json`` and ``spans.json`` (DVC metrics), confusion plot
data ``plots/confusion/<set>__<system>.csv`` (``dvc plots``), their PNGs under
``plots/images/``, and ``results.md`` (the README results table, see
:mod:`pipelines.learn.results_table`). A ``max_pairs``/``max_documents`` limit (for CI) is recorded as
``n`` vs ``n_total`` and ``limited`` in the metrics.
"""

from __future__ import annotations

import csv
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from tqdm import tqdm

from pipelines.core import scoring
from pipelines.core.document import (
    LABELS,
    PAIR_STANCES,
    STANCES,
    Relation,
    Span,
    StancePair,
    normalise_text,
)
from pipelines.core.io import write_json, write_text
from pipelines.core.params import ParamsError, load_section
from pipelines.core.stagelog import log, stage
from pipelines.learn.dataset_rows import GoldDocument, primary_documents, stance_pairs
from pipelines.models.annotate import LinkParams, PredictParams
from pipelines.models.runtime import RUNTIMES
from pipelines.sources.corpora import MIRROR_ENV
from pipelines.sources.corpora.fnc1 import anchor_predictions, find_anchors_dir, read_fnc_submission

# test set name -> build_dataset split (stance/ and tagger/ DatasetDicts)
PAIR_SETS = {
    "fnc1": "test_fnc1",
    "emergent": "test_emergent",
    "polnear": "test_polnear",
    "annotations": "test_annotations",
    "passages": "test_passages",  # data/challenge, see CHALLENGE_SETS
    "cue_paraphrases": "test_cue_paraphrases",
}
SPAN_SETS = {"polnear": "test_polnear", "annotations": "test_annotations"}
# evaluation-only files of the repository (data/challenge/README.md): set name -> file
CHALLENGE_SETS = {"passages": "news_passages.jsonl", "cue_paraphrases": "cue_paraphrases.jsonl"}
TRAIN_SPLIT = "train"


@dataclass(frozen=True)
class EvaluateParams:
    batch_size: int
    max_pairs: int | None
    max_documents: int | None
    sample_seed: int
    anchors: tuple[str, ...]
    anchors_dir: str
    tfidf_max_features: int
    tfidf_c: float
    runtime: str  # what runs the models (pipelines.models.runtime)

    def validate(self) -> None:
        if self.batch_size < 1:
            raise ParamsError("evaluate.batch_size must be >= 1")
        if self.runtime not in RUNTIMES:
            raise ParamsError(f"evaluate.runtime must be one of {', '.join(RUNTIMES)}")
        for key in ("max_pairs", "max_documents"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ParamsError(f"evaluate.{key} must be >= 1 or null (no limit)")
        if self.tfidf_max_features < 1 or self.tfidf_c <= 0:
            raise ParamsError("evaluate.tfidf_max_features must be >= 1 and tfidf_c > 0")


# --- inputs -------------------------------------------------------------------------------------


def sample_indices(n: int, limit: int | None, seed: int) -> list[int]:
    """All indices, or a seeded sample of ``limit`` of them in their original order."""
    if limit is None or n <= limit:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), limit))


def dedupe_pairs(pairs: Sequence[StancePair]) -> tuple[list[StancePair], int, int]:
    """Keep the first of pairs with the same (claim, context, source) text.

    Returns the kept pairs, the number dropped and how many of those disagreed on the stance
    (reported, since a conflicting duplicate means the gold itself is ambiguous).
    """
    seen: dict[tuple[str, str, str], str] = {}
    kept: list[StancePair] = []
    conflicts = 0
    for p in pairs:
        key = (normalise_text(p.claim), normalise_text(p.context), normalise_text(p.source or ""))
        if key in seen:
            conflicts += seen[key] != p.stance
            continue
        seen[key] = p.stance
        kept.append(p)
    return kept, len(pairs) - len(kept), conflicts


# --- baselines ----------------------------------------------------------------------------------


class TfidfBaseline:
    """TF-IDF of claim and context, their element-wise product and cosine, then logistic regression.

    The product/cosine features carry the claim-context word overlap that separates unrelated
    pairs; a bag of words of the context alone cannot. Texts are vectorised once per distinct
    string (claims repeat across many pairs).
    """

    def __init__(self, max_features: int, c: float, seed: int):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        self.vectorizer = TfidfVectorizer(
            max_features=max_features, sublinear_tf=True, stop_words="english"
        )
        self.model = LogisticRegression(C=c, max_iter=2000, random_state=seed)

    def _features(self, pairs: Sequence[StancePair]) -> Any:
        import numpy as np
        from scipy import sparse

        texts = sorted({t for p in pairs for t in (p.claim, p.context)})
        index = {t: i for i, t in enumerate(texts)}
        matrix = self.vectorizer.transform(texts)
        claims = matrix[[index[p.claim] for p in pairs]]
        contexts = matrix[[index[p.context] for p in pairs]]
        product = claims.multiply(contexts).tocsr()
        cosine = np.asarray(product.sum(axis=1))  # rows are L2-normalised
        return sparse.hstack([claims, contexts, product, sparse.csr_matrix(cosine)]).tocsr()

    def fit(self, pairs: Sequence[StancePair]) -> TfidfBaseline:
        self.vectorizer.fit(sorted({t for p in pairs for t in (p.claim, p.context)}))
        self.model.fit(self._features(pairs), [p.stance for p in pairs])
        return self

    def predict(self, pairs: Sequence[StancePair]) -> list[str]:
        return [str(label) for label in self.model.predict(self._features(pairs))]


def model_predictions(
    model: Any, pairs: Sequence[StancePair], batch_size: int, desc: str
) -> list[str]:
    """Stance model labels. One call for the whole set, so that the relatedness stage embeds
    each distinct sentence once (in 512-pair chunks, FNC-1 test's shared bodies were embedded
    again in every chunk); the bar follows the transformer's batches, then jumps past the
    pairs the relatedness stage ruled unrelated."""
    from pipelines.models.inference import classify_pairs

    with tqdm(total=len(pairs), desc=desc, unit="pair") as bar:
        out = [label for label, _ in classify_pairs(model, pairs, batch_size, bar.update)]
        bar.update(len(pairs) - bar.n)
    return out


def rule_predictions(pairs: Sequence[StancePair], desc: str) -> list[str]:
    from pipelines.models.rules import predict_stance

    return [
        predict_stance(p.claim, p.context, p.source) for p in tqdm(pairs, desc=desc, unit="pair")
    ]


# --- scoring of one test set --------------------------------------------------------------------


def pair_set_metrics(
    gold: Sequence[str], predictions: dict[str, Sequence[str]], fnc: bool = False
) -> dict[str, Any]:
    """Per system: accuracy, macro-F1 (and per class) over the labels this set has gold for,
    the related-only 3-way macro-F1 when it has both unrelated and related pairs, and the FNC
    score if ``fnc`` (the score is defined for FNC-1's label distribution only)."""
    has_unrelated = scoring.UNRELATED in gold
    has_related = any(g != scoring.UNRELATED for g in gold)
    labels = PAIR_STANCES if has_unrelated else STANCES
    systems: dict[str, Any] = {}
    for name, pred in predictions.items():
        m = scoring.classification_metrics(gold, pred, labels)
        entry: dict[str, Any] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}
        if fnc:
            entry["fnc_score"] = scoring.fnc_relative_score(gold, pred)
        if has_unrelated and has_related:
            entry["related_macro_f1"] = scoring.related_macro_f1(gold, pred)
        entry["f1"] = {
            label: c["f1"] for label, c in m["per_class"].items()
        }  # P/R: see the confusion data
        systems[name] = entry
    return {
        "labels": list(labels),
        "support": {label: sum(g == label for g in gold) for label in labels},
        "systems": systems,
    }


def write_confusion(
    out_dir: Path, name: str, gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]
) -> None:
    """Plot data (one row per pair, for the ``confusion`` template) and a PNG of the matrix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    data_dir, image_dir = out_dir / "confusion", out_dir / "images"
    data_dir.mkdir(parents=True, exist_ok=True)
    image_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["actual", "predicted"])
        writer.writerows(zip(gold, pred, strict=True))
    shown = list(labels) + sorted(set(pred) - set(labels))
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ConfusionMatrixDisplay.from_predictions(
        gold, pred, labels=shown, ax=ax, colorbar=False, xticks_rotation=30
    )
    ax.set_title(name.replace("__", ": "))
    fig.tight_layout()
    fig.savefig(image_dir / f"{name}.png", dpi=100)
    plt.close(fig)


# --- the stage ----------------------------------------------------------------------------------


def _timed(what: str, fn: Callable[..., list[str]], *args: Any) -> list[str]:
    t0 = time.perf_counter()
    out = fn(*args)
    log.info("%s: %d predictions in %.1fs", what, len(out), time.perf_counter() - t0)
    return out


def load_pair_splits(stance_dir: Path) -> dict[str, list[StancePair]]:
    """build_dataset's stance DatasetDict as StancePairs per split (stance names, not ids)."""
    from datasets import load_from_disk

    return {split: stance_pairs(ds) for split, ds in load_from_disk(str(stance_dir)).items()}


def load_challenge_sets(folder: Path) -> dict[str, list[StancePair]]:
    """The project's hand-written evaluation files, as stance pairs (missing files: skipped; a
    bad line is a :class:`ChallengeSetError` naming the file, the line and the expected fields)."""
    from pipelines.core.io import read_records

    out = {}
    for name, file in CHALLENGE_SETS.items():
        path = folder / file
        if not path.is_file():
            log.warning("challenge set %s: %s not found, skipped", name, path)
            continue
        try:
            out[f"test_{name}"] = list(
                read_records(path, partial(challenge_pair, file), CHALLENGE_LINE)
            )
        except ValueError as e:
            raise ChallengeSetError(f"{e}; fix the line and rerun `dvc repro evaluate`") from None
    return out


class ChallengeSetError(ValueError):
    """A line of a hand-written evaluation file that is not a stance pair."""


CHALLENGE_LINE = "a challenge pair {id, claim, context, stance, source?}"


def challenge_pair(file: str, r: dict[str, Any]) -> StancePair:
    if r["stance"] not in PAIR_STANCES:
        raise TypeError(f"stance {r['stance']!r} is not one of {', '.join(PAIR_STANCES)}")
    return StancePair(
        id=str(r["id"]), claim=str(r["claim"]), context=str(r["context"]), stance=r["stance"],
        group=str(r["id"]), origin=f"challenge:{file}", source=r.get("source"),
    )  # fmt: skip


def load_span_splits(tagger_dir: Path) -> dict[str, list[GoldDocument]]:
    """build_dataset's tagger DatasetDict as gold documents per split, primary annotator only."""
    from datasets import load_from_disk

    return {split: primary_documents(ds) for split, ds in load_from_disk(str(tagger_dir)).items()}


def evaluate_pairs(
    params: EvaluateParams, splits: dict[str, list[StancePair]], model_dir: Path, plots_dir: Path
) -> dict[str, Any]:
    """Score every system on every non-empty stance test split; returns the ``stance.json`` content."""
    from pipelines.models.inference import load_stance

    train = splits.get(TRAIN_SPLIT) or []
    if not train:
        raise ValueError(f"the stance dataset has no {TRAIN_SPLIT!r} pairs to fit the baselines on")
    train_claims = {normalise_text(p.claim) for p in train}
    majority = scoring.majority_label(p.stance for p in train)
    t0 = time.perf_counter()
    tfidf = TfidfBaseline(params.tfidf_max_features, params.tfidf_c, params.sample_seed).fit(train)
    log.info(
        "baselines fit on %d train pairs (majority=%s) in %.1fs",
        len(train),
        majority,
        time.perf_counter() - t0,
    )
    model = load_stance(model_dir, params.runtime)
    anchors_dir = find_anchors_dir(params.anchors_dir)

    results: dict[str, Any] = {"train": {"n": len(train), "majority": majority}}
    for name, split in PAIR_SETS.items():
        pairs = splits.get(split) or []
        if not pairs:
            log.warning("stance test set %s (split %s) is empty or missing: skipped", name, split)
            continue
        n_total, extra = len(pairs), {}
        if name == "emergent":
            pairs, dropped, conflicts = dedupe_pairs(pairs)
            extra = {"n_duplicates": dropped, "n_conflicting_duplicates": conflicts}
        keep = sample_indices(len(pairs), params.max_pairs, params.sample_seed)
        subset = [pairs[i] for i in keep]
        gold = [p.stance for p in subset]
        predictions: dict[str, Sequence[str]] = {
            "model": _timed(
                f"{name}/model", model_predictions, model, subset, params.batch_size, name
            ),
            "majority": [majority] * len(subset),
            "tfidf_lr": _timed(f"{name}/tfidf_lr", tfidf.predict, subset),
            "rules": _timed(f"{name}/rules", rule_predictions, subset, f"{name} rules"),
        }
        if name == "fnc1" and params.anchors:
            if anchors_dir is None:
                log.warning(
                    "FNC-1 anchors not found (%s, nor $%s): not scored",
                    params.anchors_dir,
                    MIRROR_ENV,
                )
            for anchor in params.anchors if anchors_dir else ():
                file = anchors_dir / f"{anchor}_submission.csv"
                predictions[anchor] = anchor_predictions(read_fnc_submission(file), subset, file)
        entry = {
            "n": len(subset),
            "n_total": n_total,
            "limited": len(subset) < len(pairs),
            "n_claim_seen_in_train": sum(normalise_text(p.claim) in train_claims for p in subset),
            **extra,
            **pair_set_metrics(gold, predictions, fnc=name == "fnc1"),
        }
        for system, pred in predictions.items():
            write_confusion(plots_dir, f"{name}__{system}", gold, pred, entry["labels"])
        results[name] = entry
        log.info(
            "%s: %d of %d pairs scored; systems %s",
            name,
            len(subset),
            n_total,
            ", ".join(predictions),
        )
    return results


def _annotate(
    docs: Sequence[GoldDocument],
    tagger_dir: Path,
    stance_dir: Path,
    link: LinkParams,
    desc: str,
    runtime: str,
) -> list[tuple[list[Span], list[Relation]]]:
    """What ``claimtrace predict`` finds in each document (same code, same params)."""
    from pipelines.models.annotate import annotate_texts
    from pipelines.models.inference import load_stance, load_tagger

    tagger, stance = load_tagger(tagger_dir, runtime), load_stance(stance_dir, runtime)
    out: list[tuple[list[Span], list[Relation]]] = []
    for i in tqdm(range(0, len(docs), 8), desc=desc, unit="batch"):
        out += annotate_texts(tagger, stance, [d.text for d in docs[i : i + 8]], link)
    return out


def evaluate_spans(
    params: EvaluateParams,
    splits: dict[str, list[GoldDocument]],
    tagger_dir: Path,
    stance_dir: Path,
    link: LinkParams,
) -> dict[str, Any]:
    """Spans and end-to-end relations of the models (as ``predict`` finds them) and of the
    rule-based annotator, on every non-empty span test split."""
    from pipelines.core.document import Article
    from pipelines.models.rules import annotate

    results: dict[str, Any] = {}
    for name, split in SPAN_SETS.items():
        docs = splits.get(split) or []
        if not docs:
            log.warning("span test set %s (split %s) is empty or missing: skipped", name, split)
            continue
        subset = [
            docs[i] for i in sample_indices(len(docs), params.max_documents, params.sample_seed)
        ]
        labels = [
            label for label in LABELS if any(s.label == label for d in subset for s in d.spans)
        ]
        t0 = time.perf_counter()
        predicted = _annotate(
            subset, tagger_dir, stance_dir, link, f"{name} models", params.runtime
        )
        t1 = time.perf_counter()
        rules = [annotate(Article.from_text(d.text)) for d in tqdm(subset, desc=f"{name} rules")]
        log.info("%s: models %.1fs, rules %.1fs on %d documents", name, t1 - t0,
                 time.perf_counter() - t1, len(subset))  # fmt: skip
        systems = {
            "model": [(sp, rel) for sp, rel in predicted],
            "rules": [(list(a.spans), list(a.relations)) for a in rules],
        }
        results[name] = {
            "n": len(subset),
            "n_total": len(docs),
            "limited": len(subset) < len(docs),
            "gold_spans": {
                label: sum(s.label == label for d in subset for s in d.spans) for label in labels
            },
            "gold_relations": sum(len(d.relations) for d in subset),
            "systems": {
                system: _system_scores(subset, pred, labels) for system, pred in systems.items()
            },
        }
    return results


def _system_scores(
    docs: Sequence[GoldDocument],
    predicted: Sequence[tuple[list[Span], list[Relation]]],
    labels: Sequence[str],
) -> dict[str, Any]:
    """Span P/R/F1 (exact, overlap) and end-to-end relation P/R/F1 of one system."""
    pairs = list(zip(docs, predicted, strict=True))
    spans = scoring.span_scores(((d.text, d.spans, sp) for d, (sp, _) in pairs), labels)
    relations = scoring.relation_scores((d.spans, d.relations, sp, rel) for d, (sp, rel) in pairs)
    return {
        **_drop_counts(spans),
        "relations": {
            mode: {k: v[k] for k in ("precision", "recall", "f1")} for mode, v in relations.items()
        },
    }


def _drop_counts(s: dict[str, Any]) -> dict[str, Any]:
    """Keep P/R/F1 (the metrics) and leave raw counts out of the DVC metrics file."""
    return {
        mode: {
            "micro_f1": s[mode]["micro"]["f1"],
            "macro_f1": s[mode]["macro_f1"],
            **{
                label: {k: v[k] for k in ("precision", "recall", "f1")}
                for label, v in s[mode]["per_label"].items()
            },
        }
        for mode in ("exact", "overlap")
    }


def summary(stance: dict[str, Any], spans: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of the models, one flat group per test set: the DVC metrics file
    (``dvc metrics show`` stays a few columns wide; every system's full scores are in
    ``stance.json`` / ``spans.json``)."""
    out: dict[str, Any] = {}
    for name, entry in stance.items():
        m = entry.get("systems", {}).get("model") if isinstance(entry, dict) else None
        if m:
            keys = ("fnc_score", "macro_f1", "related_macro_f1")
            out[f"stance_{name}"] = {k: round(m[k], 4) for k in keys if k in m}
            out[f"stance_{name}"]["denies_f1"] = round(m["f1"].get("denies", 0.0), 4)
    for name, entry in spans.items():
        m = entry["systems"]["model"]
        out[f"spans_{name}"] = {
            **{f"{label.lower()}_exact_f1": round(m["exact"][label]["f1"], 4)
               for label in entry["gold_spans"]},
            "denial_overlap_f1": round(m["overlap"].get("Denial", {}).get("f1", 0.0), 4),
            "relation_overlap_f1": round(m["relations"]["overlap"]["f1"], 4),
        }  # fmt: skip
    return out


def linking(params: Path, batch_size: int) -> LinkParams:
    """How ``predict`` links spans (its params section), so these scores describe predict."""
    p = load_section(PredictParams, "predict", params)
    return LinkParams(p.sentence_gap, p.max_claims, batch_size, p.same_paragraph)


def command(
    datasets: Annotated[Path, typer.Argument(help="build_dataset's output (stance/, tagger/)")],
    models: Annotated[Path, typer.Argument(help="trained models (stance/, tagger/)")],
    out: Annotated[Path, typer.Argument(help="metrics folder to write")],
    challenge: Annotated[
        Path, typer.Option(help="the project's evaluation-only files (data/challenge)")
    ] = Path("data/challenge"),
    params: Annotated[Path, typer.Option(help="params file (section 'evaluate')")] = Path(
        "params.yaml"
    ),
) -> None:
    """Score the stance model and span tagger beside baselines and FNC-1 anchors on the same test items."""
    from pipelines.learn.results_table import render

    p = load_section(EvaluateParams, "evaluate", params)
    with stage("evaluate", fail_on=(ChallengeSetError,)) as counts:
        out.mkdir(parents=True, exist_ok=True)
        plots_dir = out / "plots"
        if plots_dir.exists():
            shutil.rmtree(plots_dir)  # no stale plots of a system or set no longer evaluated
        pair_splits = load_pair_splits(datasets / "stance") | load_challenge_sets(challenge)
        stance = evaluate_pairs(p, pair_splits, models / "stance", plots_dir)
        spans = evaluate_spans(
            p, load_span_splits(datasets / "tagger"), models / "tagger", models / "stance",
            linking(params, p.batch_size),
        )  # fmt: skip
        write_json(out / "stance.json", stance, indent=2)
        write_json(out / "spans.json", spans, indent=2)
        write_json(out / "summary.json", summary(stance, spans), indent=2)
        write_text(out / "results.md", render(stance, spans))
        for name, entry in stance.items():
            if name != "train":
                counts[f"{name}_pairs"] = entry["n"]
        for name, entry in spans.items():
            counts[f"{name}_documents"] = entry["n"]


if __name__ == "__main__":
    typer.run(command)
