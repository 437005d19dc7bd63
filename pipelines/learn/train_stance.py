"""Fine-tune the stance classifier, then fit the relatedness stage and the decision biases.

Three parts, saved together in one model folder (``models/stance``):

1. **The transformer** (``AutoModelForSequenceClassification``, 4 labels): a (claim, marked
   context) pair -> asserts / denies / unconfirmed / unrelated. It trains on a fixed number of
   examples per group (``sample``: ``<kind>/<label>`` -> count, a smaller group is repeated),
   where kind is ``relation`` (annotated Source->Claim pairs: PolNeAR and the project's own),
   ``generated`` (counterfactual cue swaps), ``fnc1`` or ``emergent`` (related headline/body
   pairs only: their unrelated pairs are the relatedness stage's job). A share of the relation
   pairs (``variants``) is shown without the claim's markers, or without any markers, the way
   ``classify`` sees a line whose claim is paraphrased or which has no source.
2. **Relatedness** (:mod:`pipelines.models.relatedness`): a logistic regression on lexical
   features, fitted on every FNC-1 and Emergent training pair; for headline/body pairs it
   decides unrelated, and the transformer picks among the related labels.
3. **Biases**: one additive log-probability bias per label and kind of input, chosen on the
   validation split to maximise macro-F1 (rare labels get their threshold lowered there, not
   by guessing class weights). They are kept only where they also help on *held-out groups*:
   fitted on all but one of ``bias_folds`` folds of whole groups (articles, FNC-1 stories,
   Emergent claims) and scored on the left-out one, they must beat no biases; a fit that
   only memorises a few groups' quirks (FNC-1 validation draws 92 of its 119 denies from one
   story) is dropped for zeros.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import typer

from pipelines.core.io import write_json
from pipelines.core.stagelog import log
from pipelines.core.text import CLM_CLOSE, CLM_OPEN, MARKERS
from pipelines.learn.dataset_rows import REBUTTAL_ORIGIN, read_build_params
from pipelines.learn.train import (
    TaskSpec,
    TrainParams,
    fit,
    load_saved,
    seeded_sample,
    stage_command,
)
from pipelines.models.embedding import SentenceEmbedder
from pipelines.models.encoding import STANCE_LABELS, encode_pairs
from pipelines.models.relatedness import FILE as RELATEDNESS_FILE
from pipelines.models.relatedness import DocumentFrequency, RelatednessModel, feature_matrix

KINDS = ("relation", "generated", "rebuttal", "fnc1", "emergent")
RELATION_KINDS = ("relation", "generated", "rebuttal")  # Source->Claim pairs, marked in context
HEADLINE_KINDS = ("fnc1", "emergent")
UNRELATED = "unrelated"


@dataclass(frozen=True)
class StanceParams(TrainParams):
    sample: dict[str, int]  # "<kind>/<label>" -> training examples
    variants: dict[str, float]  # share of relation pairs shown "source_only" / "plain"
    relatedness_c: float  # inverse regularisation of the relatedness logistic regression
    relatedness_embedder: str  # sentence-embedding model of its cosine features
    relatedness_size: int  # headline/body training pairs it is fitted on (0 = all)
    calibration_size: int  # validation pairs per kind of input the biases are fitted on (0 = all)
    bias_folds: int  # folds of whole validation groups the biases must help on (< 2: no check)

    def validate(self) -> None:
        super().validate()
        for key, n in self.sample.items():
            kind, _, label = key.partition("/")
            if kind not in KINDS or label not in STANCE_LABELS or not isinstance(n, int) or n < 0:
                raise ValueError(
                    f"train_stance.sample: {key}: {n!r}; keys are <kind>/<label> with kind in "
                    f"{KINDS} and label in {STANCE_LABELS}, values counts >= 0"
                )
        if set(self.variants) - {"source_only", "plain"} or sum(self.variants.values()) > 1:
            raise ValueError("train_stance.variants: source_only and plain shares, sum <= 1")
        if self.bias_folds < 0:
            raise ValueError("train_stance.bias_folds: a count >= 0 (0 or 1: no held-out check)")
        if self.relatedness_size < 0:
            raise ValueError("train_stance.relatedness_size: a count >= 0 (0: every pair)")


def kind_of(row: dict[str, Any]) -> str:
    """The sample group of a row: ``rebuttal`` (generated two-source passages), ``generated``
    (cue swaps), ``fnc1``/``emergent`` (headline/body) or ``relation`` (annotated)."""
    if row.get("generated"):
        return "rebuttal" if row.get("origin", "").startswith(REBUTTAL_ORIGIN) else "generated"
    for kind in HEADLINE_KINDS:
        if row["subset"].startswith(kind):
            return kind
    return "relation"


def sample_rows(rows: Sequence[dict[str, Any]], sample: dict[str, int], seed: int) -> list[int]:
    """Row indices: ``sample[kind/label]`` of each group, drawn without replacement and
    repeated whole when the group is smaller (rare gold denials count several times)."""
    rng = random.Random(seed)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[f"{kind_of(row)}/{STANCE_LABELS[row['stance']]}"].append(i)
    chosen: list[int] = []
    for key in sorted(groups):
        members, want = groups[key], sample.get(key, 0)
        repeats, rest = divmod(want, len(members))
        chosen += members * repeats + rng.sample(members, rest)
    return sorted(chosen)


def strip_markers(context: str, markers: Sequence[str]) -> str:
    for marker in markers:
        context = context.replace(f"{marker} ", "").replace(f" {marker}", "")
    return context


def variant(row: dict[str, Any], variants: dict[str, float], draw: float) -> dict[str, Any]:
    """A relation pair as ``classify`` may see it: claim unmarked (it was paraphrased), or no
    markers and no source at all; ``draw`` in [0, 1) picks (seeded by the caller)."""
    kind = kind_of(row)
    if kind not in RELATION_KINDS or row["source"] is None:
        return row
    source_only = variants.get("source_only", 0.0)
    if draw < source_only:
        return {**row, "context": strip_markers(row["context"], (CLM_OPEN, CLM_CLOSE))}
    # a rebuttal's context holds two sources: without the markers its label would be a guess
    plain = draw < source_only + variants.get("plain", 0.0)
    if plain and row["stance"] != 3 and kind != "rebuttal":
        return {**row, "context": strip_markers(row["context"], MARKERS), "source": None}
    return row


def _encode(
    batch: dict[str, list[Any]], tokenizer: Any, max_length: int, context_chars: int
) -> dict[str, list[Any]]:
    enc = encode_pairs(
        tokenizer, batch["claim"], batch["context"], batch["source"], max_length, context_chars
    )
    enc["labels"] = batch["stance"]
    enc["length"] = [len(ids) for ids in enc["input_ids"]]
    return dict(enc)


def training_rows(train: Any, p: StanceParams) -> list[dict[str, Any]]:
    """The sampled training pairs, each possibly shown as a :func:`variant` (seeded)."""
    rows = train.to_list()
    rng = random.Random(p.seed)
    return [variant(rows[i], p.variants, rng.random()) for i in sample_rows(rows, p.sample, p.seed)]


def transformer_rows(data: Any) -> list[int]:
    """Indices of the rows the transformer decides: all but the unrelated headline/body pairs,
    which are the relatedness stage's (43% of validation; they made the per-epoch scores)."""
    unrelated = STANCE_LABELS.index(UNRELATED)
    cols = data.select_columns(["subset", "stance", "generated"]).to_dict()
    return [
        i
        for i, (subset, stance, generated) in enumerate(
            zip(cols["subset"], cols["stance"], cols["generated"], strict=True)
        )
        if generated or stance != unrelated or not subset.startswith(HEADLINE_KINDS)
    ]


def prepare(tokenizer: Any, data: Any, p: StanceParams, context_chars: int) -> tuple[Any, Any]:
    """The sampled, tokenised training pairs and an ``eval_size`` sample of the validation
    pairs the transformer decides."""
    from datasets import Dataset

    train = Dataset.from_list(training_rows(data["train"], p), features=data["train"].features)
    keep = transformer_rows(data["validation"])
    validation = data["validation"].select(
        [keep[i] for i in seeded_sample(len(keep), p.eval_size, p.seed)]
    )
    fn = partial(_encode, tokenizer=tokenizer, max_length=p.max_length, context_chars=context_chars)
    return tuple(  # type: ignore[return-value]
        ds.map(fn, batched=True, remove_columns=ds.column_names, keep_in_memory=True,
               desc="tokenise pairs")
        for ds in (train, validation)
    )  # fmt: skip


def metrics(pred: Any) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    y, p = pred.label_ids, pred.predictions
    labels = list(range(len(STANCE_LABELS)))
    return {
        "accuracy": float(accuracy_score(y, p)),
        "macro_f1": float(f1_score(y, p, average="macro", labels=labels, zero_division=0)),
    }


# --- relatedness and biases, fitted after the transformer ----------------------------------------


def fit_relatedness(
    rows: Sequence[dict[str, Any]], c: float, embedder: str, size: int = 0, seed: int = 0
) -> RelatednessModel | None:
    """The relatedness stage, fitted on the headline/body pairs of ``rows`` (a seeded sample of
    ``size`` of them, 0 = all: the default run fits on every pair, ~150 s of it embedding their
    sentences); document frequencies come from their distinct contexts. None when the training
    data has no related and unrelated headline/body pairs to learn it from (the model then
    reads every pair as a Source->Claim relation)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    pairs = [r for r in rows if kind_of(r) in HEADLINE_KINDS]
    pairs = [pairs[i] for i in seeded_sample(len(pairs), size, seed)]
    if len({r["stance"] == STANCE_LABELS.index(UNRELATED) for r in pairs}) < 2:
        log.warning("no related and unrelated headline/body pairs: no relatedness stage")
        return None
    df = DocumentFrequency.fit(sorted({r["context"] for r in pairs}))
    sentences = SentenceEmbedder(embedder)
    claims, contexts = [r["claim"] for r in pairs], [r["context"] for r in pairs]
    x = np.array(feature_matrix(claims, contexts, df, sentences))
    y = np.array([r["stance"] != STANCE_LABELS.index(UNRELATED) for r in pairs])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    lr = LogisticRegression(C=c, max_iter=5000).fit((x - mean) / scale, y)
    return RelatednessModel(
        df,
        sentences,
        sentences.digest(),
        mean.tolist(),
        scale.tolist(),
        lr.coef_[0].tolist(),
        float(lr.intercept_[0]),
    )


def macro_f1(
    log_probs: Any, gold: Sequence[int], labels: Sequence[int], bias: Sequence[float]
) -> float:
    """Macro-F1 over ``labels`` of the biased argmax (among ``labels`` only)."""
    import numpy as np
    from sklearn.metrics import f1_score

    lp = np.asarray(log_probs, dtype=float).reshape(len(gold), -1)
    mask = np.full(lp.shape[1], -np.inf)
    mask[list(labels)] = 0.0
    pred = (lp + np.asarray(bias, dtype=float) + mask).argmax(axis=1)
    return float(f1_score(gold, pred, labels=list(labels), average="macro", zero_division=0))


def tune_biases(
    log_probs: Sequence[Sequence[float]],
    gold: Sequence[int],
    labels: Sequence[int],
    rounds: int = 3,
) -> list[float]:
    """Additive log-probability biases (one per label, 0 for the first) that maximise macro-F1
    over ``labels`` on these examples: coordinate ascent over a grid, a few rounds."""
    import numpy as np

    lp, y = np.asarray(log_probs, dtype=float), np.asarray(gold)
    bias = np.zeros(lp.shape[1])

    def score(b: Any) -> float:
        return macro_f1(lp, y, labels, b)

    best = score(bias)
    grid = np.linspace(-3, 3, 25)
    for _ in range(rounds):
        for k in labels[1:]:
            for value in grid:
                trial = bias.copy()
                trial[k] = value
                if (s := score(trial)) > best + 1e-9:
                    best, bias = s, trial
    return [round(float(b), 4) for b in bias]


def group_folds(groups: Sequence[str], k: int, seed: int) -> list[int]:
    """A fold index per row, whole groups to one fold: the distinct groups, shuffled with
    ``seed``, dealt round-robin to ``min(k, groups)`` folds."""
    distinct = sorted(set(groups))
    random.Random(seed).shuffle(distinct)
    n = max(1, min(k, len(distinct)))
    fold = {g: i % n for i, g in enumerate(distinct)}
    return [fold[g] for g in groups]


def held_out_f1(
    log_probs: Sequence[Sequence[float]],
    gold: Sequence[int],
    groups: Sequence[str],
    labels: Sequence[int],
    k: int,
    seed: int,
) -> float | None:
    """Macro-F1 on held-out groups with biases tuned on the other folds, pooled over the folds
    (compare it with the unbiased macro-F1 of all rows); None with fewer than two groups or
    ``k`` below 2."""
    import numpy as np

    folds = np.asarray(group_folds(groups, k, seed))
    if k < 2 or len(set(folds.tolist())) < 2:
        return None  # nothing to hold out
    lp, y = np.asarray(log_probs, dtype=float), np.asarray(gold)
    biased = np.zeros_like(lp)
    for f in sorted(set(folds.tolist())):
        rest = folds != f
        biased[~rest] = lp[~rest] + np.asarray(tune_biases(lp[rest], y[rest], labels))
    return macro_f1(biased, y, labels, [0.0] * lp.shape[1])


def _validation_log_probs(
    model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], max_length: int, context_chars: int
) -> list[list[float]]:
    from pipelines.models.inference import pair_log_probs

    return pair_log_probs(
        model,
        tokenizer,
        [r["claim"] for r in rows],
        [r["context"] for r in rows],
        [r["source"] for r in rows],
        max_length,
        context_chars,
    )


def calibrate(
    model: Any, tokenizer: Any, data: Any, folder: Path, p: StanceParams, context_chars: int
) -> dict[str, Any]:
    """Fit the relatedness stage (saved in ``folder``) and the biases on validation; return
    what goes into ``claimtrace.json`` (``info``) and ``training_metrics.json`` (``metrics``)."""
    from sklearn.metrics import accuracy_score

    relatedness = fit_relatedness(
        data["train"].to_list(), p.relatedness_c, p.relatedness_embedder, p.relatedness_size, p.seed
    )
    if relatedness is not None:
        write_json(folder / RELATEDNESS_FILE, relatedness.to_json())
    val = data["validation"].to_list()
    unrelated = STANCE_LABELS.index(UNRELATED)
    groups = {
        "relation": ([r for r in val if kind_of(r) in RELATION_KINDS], [0, 1, 2, 3]),
        "headline": (
            [r for r in val if kind_of(r) in HEADLINE_KINDS and r["stance"] != unrelated],
            [0, 1, 2],
        ),
    }
    biases, out = {}, {}
    for name, (rows, labels) in groups.items():
        rows = [rows[i] for i in seeded_sample(len(rows), p.calibration_size, p.seed)]
        if not rows:
            continue
        lp = _validation_log_probs(model, tokenizer, rows, p.max_length, context_chars)
        gold = [r["stance"] for r in rows]
        fitted = tune_biases(lp, gold, labels)
        unbiased = macro_f1(lp, gold, labels, [0.0] * 4)
        check = held_out_f1(lp, gold, [r["group"] for r in rows], labels, p.bias_folds, p.seed)
        keep = check is None or check > unbiased
        biases[name] = fitted if keep else [0.0] * len(fitted)
        out[f"validation_{name}_macro_f1"] = round(unbiased, 4)
        out[f"validation_{name}_macro_f1_biased"] = round(
            macro_f1(lp, gold, labels, biases[name]), 4
        )
        out[f"validation_{name}_pairs"] = len(rows)
        if check is not None:
            out[f"validation_{name}_held_out_macro_f1_biased"] = round(check, 4)
        out[f"validation_{name}_biases_kept"] = keep
        if check is not None and not keep:
            log.info(
                "%s biases %s help validation but not its held-out groups (%.4f vs %.4f "
                "unbiased): not used",
                name, fitted, check, unbiased,
            )  # fmt: skip
    headline = [r for r in val if kind_of(r) in HEADLINE_KINDS]
    if headline and relatedness is not None:
        prob = relatedness.probabilities(
            [r["claim"] for r in headline], [r["context"] for r in headline]
        )
        gold_related = [r["stance"] != unrelated for r in headline]
        out["validation_relatedness_accuracy"] = round(
            float(accuracy_score(gold_related, [q >= relatedness.threshold for q in prob])), 4
        )
    return {"info": {"biases": biases}, "metrics": out}


def spec(p: StanceParams, context_chars: int) -> TaskSpec:
    from transformers import DataCollatorWithPadding

    return TaskSpec(
        task="stance",
        labels=STANCE_LABELS,
        markers=True,
        model_class="AutoModelForSequenceClassification",
        prepare=partial(prepare, p=p, context_chars=context_chars),
        collator=lambda tok: DataCollatorWithPadding(tok),
        metrics=metrics,
        class_counts=lambda ds: Counter(ds["labels"]),
        finish=partial(calibrate, p=p, context_chars=context_chars),
    )


def train(dataset_dir: Path, output_dir: Path, live_dir: Path, p: StanceParams) -> dict[str, Any]:
    data = load_saved(dataset_dir)
    context_chars = int(read_build_params(dataset_dir)["context_chars"])
    return fit(
        spec(p, context_chars), p, data, output_dir, live_dir, {"context_chars": context_chars}
    )


command = stage_command(
    "stance",
    StanceParams,
    train,
    "validation_relation_macro_f1_biased",
    "Fine-tune the stance classifier, fit its relatedness stage and biases; save them together.",
)


if __name__ == "__main__":
    typer.run(command)
