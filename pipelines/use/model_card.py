"""Model and dataset cards for the Hub, built from what the pipeline actually produced.

The model card's text is the Jinja template ``templates/model_card.md``, rendered by
huggingface_hub's ``ModelCard.from_template`` with the values :func:`card_fields` gathers.

Every number in a card comes from a file (``metrics/*.json``, ``training_metrics.json``,
``params.yaml``); nothing is typed in here, so a card can never advertise a score the model
did not get. Metric files are read tolerantly (numeric leaves become metrics, counts are left
out) because the evaluate stage's schema may grow, but only the published model's own system is
taken from them, never a baseline's; a missing file is a warning, a broken one an error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.core.stagelog import log
from pipelines.learn.results_table import SET_TITLES, span_tables, stance_tables

if TYPE_CHECKING:
    from huggingface_hub import DatasetCard, EvalResult, ModelCard

# The guide's running example: one reported claim, one source that cannot confirm it, one that
# asserts it. Contexts mark the source with [SRC] ... [/SRC] as pipelines.core.text.pair_texts does;
# the Hub widget takes a single text, so claim and context are joined by [SEP] there.
WIDGET_CLAIM = "Russia had used North Korean missiles"
WIDGET_CONTEXTS = (  # (example title, context)
    (
        "Ukraine cannot confirm",
        "[SRC] Ukraine [/SRC] said it could not confirm that Russia had used North Korean missiles.",
    ),
    (
        "A U.S. spokesman asserts",
        "[SRC] A U.S. spokesman [/SRC] said that Russia had used North Korean missiles against Ukraine.",
    ),
)
TAGGER_WIDGET = "Ukraine said it could not confirm that Russia had used North Korean missiles."
TEMPLATE = Path(__file__).with_name("templates") / "model_card.md"
# Leaves that count things rather than score them.
COUNT_KEYS = ("support", "count", "seconds", "n")
SPLIT_SUFFIXES = ("train", "dev", "validation", "val", "test")
METRIC_WORDS = ("accuracy", "f1", "precision", "recall", "score", "auc", "loss")
# evaluate's system name for the model being published; every other system is a comparison.
OUR_SYSTEM = {"text-classification": "model", "token-classification": "tagger"}


class CardError(ValueError):
    """A metrics or training file cannot be read; the message names it."""


@dataclass(frozen=True)
class CardInputs:
    """Everything a model card says, gathered from files before rendering."""

    repo_id: str
    task: str  # "text-classification" or "token-classification"
    labels: tuple[str, ...]
    base_model: str
    license: str
    tags: tuple[str, ...]
    datasets: tuple[str, ...]
    metrics: Mapping[str, Any]  # file stem -> parsed JSON
    training: Mapping[str, Any]  # name -> parsed params section / training metrics
    parameters: int | None  # number of weights, from the safetensors header


def read_json_files(folder: Path, what: str) -> dict[str, Any]:
    """``{stem: parsed JSON}`` for every ``*.json`` in ``folder``; absent folder -> {} + warning."""
    if not folder.is_dir():
        log.warning("no %s folder %s: the card will say so", what, folder)
        return {}
    out: dict[str, Any] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise CardError(
                f"{path}: not valid JSON ({e.msg}, line {e.lineno}); fix or delete it"
            ) from e
    if not out:
        log.warning("no %s JSON files in %s: the card will say so", what, folder)
    return out


def numeric_leaves(obj: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], float]]:
    """Every finite number inside nested dicts, with its key path (lists and bools are skipped)."""
    if isinstance(obj, bool):
        return
    if isinstance(obj, int | float):
        if math.isfinite(obj):
            yield path, float(obj)
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from numeric_leaves(value, (*path, str(key)))


def scalar_leaves(obj: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every non-mapping value inside nested dicts (params may be strings or lists too)."""
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from scalar_leaves(value, (*path, str(key)))
    else:
        yield path, obj


def is_count(key: str) -> bool:
    return key in COUNT_KEYS or key.startswith("n_") or key.endswith(("_count", "_seconds"))


def split_dataset(name: str) -> tuple[str, str | None]:
    """``fnc1_test`` -> (``fnc1``, ``test``); a name without a split suffix stays whole."""
    for split in SPLIT_SUFFIXES:
        if name.endswith(f"_{split}") and len(name) > len(split) + 1:
            return name[: -len(split) - 1], split
    return name, None


def metrics_task(stem: str) -> str | None:
    """Which model a metrics file scores (span/tagger files say so in their name); None for
    training logs (``train*``), which describe the fit, not an evaluation."""
    if stem.startswith("train"):
        return None
    if any(word in stem for word in ("span", "tagger", "token")):
        return "token-classification"
    return "text-classification"


def model_entries(stem: str, data: Any, task: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(test set, this model's metrics)`` pairs of one metrics file.

    ``evaluate`` scores several systems on each set (``{set: {"systems": {"model": ...,
    "tfidf_lr": ..., "athene": ...}}}``): only this model's system is taken, so a baseline's or
    an FNC-1 anchor's score is never attributed to it. A file without ``systems`` is read as
    ``{set: metrics}``; its top-level numbers go to a set named after the file.
    """
    if not isinstance(data, Mapping):
        log.warning("metrics/%s.json is not a JSON object: skipped", stem)
        return
    top: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and isinstance(value.get("systems"), Mapping):
            ours = value["systems"].get(OUR_SYSTEM[task])
            if ours is None:
                log.warning(
                    "metrics/%s.json [%s] has no %r system: skipped", stem, key, OUR_SYSTEM[task]
                )
            else:
                yield key, ours
        elif isinstance(value, Mapping):
            yield key, value
        else:
            top[key] = value
    if top:
        yield stem, top


def metric_type(path: tuple[str, ...]) -> str:
    """The metric in a key path: ``("f1", "asserts")`` and ``("per_class", "asserts", "f1")`` are
    both ``f1`` (a label is not a metric); a path without a metric word ends in its name."""
    return next((key for key in reversed(path) if any(w in key for w in METRIC_WORDS)), path[-1])


def eval_results(metrics: Mapping[str, Any], task: str) -> list[EvalResult]:
    """``model-index`` entries from the metric files that evaluate this ``task``'s model.

    Set ``fnc1_test`` becomes dataset ``fnc1`` split ``test`` (a set without a split suffix has no
    split); nested keys join into the metric name (``f1 asserts``), the last one is its type.
    Counts (support, n_*, seconds) are not scores and are left out, as are strings and lists.
    """
    from huggingface_hub import EvalResult

    results = []
    for stem, data in metrics.items():
        if metrics_task(stem) != task:
            log.info(
                "metrics/%s.json is not an evaluation of this %s model: not in model-index",
                stem,
                task,
            )
            continue
        for set_key, entry in model_entries(stem, data, task):
            dataset, split = split_dataset(set_key)
            for path, value in numeric_leaves(entry):
                if any(is_count(key) for key in path):
                    continue
                results.append(
                    EvalResult(
                        task_type=task,
                        dataset_type=dataset,
                        dataset_name=SET_TITLES.get(dataset, dataset),
                        dataset_split=split,
                        metric_type=metric_type(path),
                        metric_name=" ".join(path),
                        metric_value=value,
                    )
                )
    return results


def comparison(metrics: Mapping[str, Any], task: str) -> str:
    """evaluate's tables (this model beside baselines and anchors on the same items), if present."""
    name, render = (
        ("stance", stance_tables) if task == "text-classification" else ("spans", span_tables)
    )
    if name not in metrics:
        return ""
    try:
        return "\n".join(render(metrics[name]))
    except (KeyError, TypeError, AttributeError) as e:
        log.warning(
            "metrics/%s.json does not have evaluate's layout (%r): no comparison table", name, e
        )
        return ""


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def _key_value_table(values: Any) -> str:
    rows = [(".".join(p) or "value", _fmt(v)) for p, v in scalar_leaves(values)]
    return _table(rows, ("key", "value"))


def _results_table(results: list[EvalResult]) -> str:
    rows = [
        (
            r.dataset_name + (f" ({r.dataset_split})" if r.dataset_split else ""),
            r.metric_name or r.metric_type,
            _fmt(r.metric_value),
        )
        for r in results
    ]
    return _table(rows, ("dataset", "metric", "value")) if rows else ""


def card_fields(inputs: CardInputs, results: list[EvalResult]) -> dict[str, Any]:
    """What ``templates/model_card.md`` fills in besides the metadata (the prose is there)."""
    return {
        "name": inputs.repo_id.split("/")[-1],
        "repo_id": inputs.repo_id,
        "task": inputs.task,
        "base_model": inputs.base_model,
        "size": f"{inputs.parameters / 1e6:.1f}M parameters, " if inputs.parameters else "",
        "labels": ", ".join(f"`{label}`" for label in inputs.labels),
        "widget_claim": WIDGET_CLAIM,
        "widget_context": WIDGET_CONTEXTS[0][1],
        "tagger_widget": TAGGER_WIDGET,
        "training": [
            (section, _key_value_table(values)) for section, values in inputs.training.items()
        ],
        "results_table": _results_table(results),
        "metric_files": ", ".join(
            f"`metrics/{stem}.json`" for stem in inputs.metrics if metrics_task(stem) == inputs.task
        ),
        "comparison": comparison(inputs.metrics, inputs.task) if results else "",
    }


def model_card(inputs: CardInputs) -> ModelCard:
    """A ``ModelCard`` with Hub metadata (base model, widget, ``model-index``) and the text of
    ``templates/model_card.md``."""
    from huggingface_hub import ModelCard, ModelCardData

    results = eval_results(inputs.metrics, inputs.task)
    widget = (
        [
            {"text": f"{WIDGET_CLAIM} [SEP] {context}", "example_title": title}
            for title, context in WIDGET_CONTEXTS
        ]
        if inputs.task == "text-classification"
        else [{"text": TAGGER_WIDGET}]
    )
    data = ModelCardData(
        model_name=inputs.repo_id.split("/")[-1],
        base_model=inputs.base_model,
        datasets=list(inputs.datasets) or None,
        license=inputs.license,
        language="en",
        library_name="transformers",
        pipeline_tag=inputs.task,
        tags=list(inputs.tags),
        widget=widget,
        eval_results=results or None,
    )
    return ModelCard.from_template(data, template_path=TEMPLATE, **card_fields(inputs, results))


def arrow_splits(files: list[str]) -> list[str]:
    """Split folders of a ``save_to_disk`` layout (``<split>/data-*.arrow``)."""
    return sorted({f.split("/")[0] for f in files if f.endswith(".arrow") and f.count("/") == 1})


def hub_dataset_card(
    repo_id: str, files: list[str], tags: tuple[str, ...], details: str | None
) -> DatasetCard:
    """A ``DatasetCard`` that states what the files are, how to load them and under which (missing)
    licence; ``details`` (build_dataset's own README: splits, label counts, provenance) is kept."""
    from huggingface_hub import DatasetCard, DatasetCardData

    splits = arrow_splits(files)
    data = DatasetCardData(
        pretty_name=f"claimtrace {repo_id.split('/')[-1]}",
        language=["en"],
        license="other",
        task_categories=["text-classification"],
        tags=list(tags),
        # save_to_disk's split folders are not a layout the Hub guesses: name them
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"{s}/*.arrow"} for s in splits],
            }
        ]
        if splits
        else None,
    )
    listing = "\n".join(f"- `{f}`" for f in files)
    demoted = "\n".join(
        f"#{line}" if line.startswith("#") else line for line in (details or "").splitlines()
    )
    extra = f"\n## Dataset details (from build_dataset)\n\n{demoted}\n" if details else ""
    return DatasetCard(f"""---
{data.to_yaml()}
---

# {repo_id.split("/")[-1]}

Claim/context stance pairs (`asserts`, `denies`, `unconfirmed`, `unrelated`) built by the claimtrace
pipeline (`build_dataset` stage) from FNC-1, Emergent, PolNeAR and the project's own annotations.
Load with `datasets.load_dataset("{repo_id}", token=True)` (a private repo needs a token).

## Licence and access

The upstream corpora have no licence file and the article texts belong to their publishers, so this
repository is **private** and meant for the project's own reproducibility, not for redistribution.
To rebuild it from the public sources instead, run `claimtrace fetch` and `dvc repro build_dataset`.

## Files

{listing}
{extra}""")
