"""Build the stance-pair and span-tagging datasets (Hugging Face ``DatasetDict``s) from imported data.

Inputs: ``<imported>/polnear/{train,dev,test}.jsonl`` (Documents), ``<imported>/pairs/
{fnc1,emergent}_{train,test}.jsonl`` (StancePairs) and ``<annotations>/annotations.jsonl``
(the project's own gold Documents; optional). Outputs ``<out>/stance`` and ``<out>/tagger``,
each with a README.md dataset card.

Splits are by ``group`` (an article, an FNC-1 story, an Emergent claim), never by row. The
public test sets are fixed: PolNeAR test, FNC-1 competition test and Emergent test each get
their own ``test_*`` split and any training item whose group occurs in a test set is dropped
(and counted).
``validation`` is drawn from the training groups by a seeded hash of the group, so the same
PolNeAR article lands in the same split of both datasets. The project's annotations are split
the same way into training groups and ``test_annotations``. Headline/body groups (FNC-1
stories, Emergent claims) are few and uneven in their rare labels, so their validation share
is stratified by label counts instead (:func:`stratified_groups`).

Each article is trained on with one annotator, chosen deterministically (a gold annotation
before a silver one, then the smallest hash of article id + annotator), so articles annotated
twice do not count twice; the other annotators' spans of test articles are kept in the
tagger's ``test_*_other_annotators`` splits for agreement studies.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from tqdm import tqdm

from pipelines.core.document import (
    LABELS,
    PAIR_STANCES,
    AnnotationSet,
    Document,
    Span,
    StancePair,
    read_documents,
    read_pairs,
    validate_pair,
)
from pipelines.core.io import atomic_dir, sha256_file, write_json, write_text
from pipelines.core.lexicon import ASSERTS, DENIES, UNCONFIRMED
from pipelines.core.params import DEFAULT_PARAMS, load_section
from pipelines.core.stagelog import stage
from pipelines.core.text import relation_context, split_sentences
from pipelines.learn.counterfactual import can_rebut, rebut, swap_cue
from pipelines.learn.dataset_rows import (
    BUILD_PARAMS_FILE,
    GENERATED,
    REBUTTAL_ORIGIN,
    stance_features,
    stance_row,
    tagger_features,
    tagger_row,
    to_dataset_dict,
)

POLNEAR_SPLITS = ("train", "dev", "test")
PAIR_FILES = ("fnc1_train", "fnc1_test", "emergent_train", "emergent_test")
# headline/body training subsets: validation groups chosen by stratified_groups
STRATIFIED_SUBSETS = tuple(n for n in PAIR_FILES if n.endswith("_train"))
ANNOTATIONS_FILE = "annotations.jsonl"

# test split -> the only subsets (input files) it may contain
STANCE_TEST_SPLITS = {
    "test_polnear": {"polnear_test"},
    "test_fnc1": {"fnc1_test"},
    "test_emergent": {"emergent_test"},
    "test_annotations": {"annotations"},
}
TAGGER_TEST_SPLITS = {
    "test_polnear": {"polnear_test"},
    "test_annotations": {"annotations"},
    "test_polnear_other_annotators": {"polnear_test"},
    "test_annotations_other_annotators": {"annotations"},
}
TEST_ONLY_SUBSETS = {"polnear_test", "fnc1_test", "emergent_test"}
TRAIN_SPLITS = ("train", "validation")
USABLE_PROVENANCE = ("gold", "silver")


@dataclass(frozen=True)
class BuildParams:
    seed: int
    validation_fraction: float
    annotations_test_fraction: float
    negatives_per_article: int
    context_chars: int
    body_chars: int
    cue_swaps: bool
    rebuttals: bool

    def validate(self) -> None:
        for name in ("validation_fraction", "annotations_test_fraction"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"build_dataset.{name} must be in [0, 1)")
        if self.negatives_per_article < 0 or min(self.context_chars, self.body_chars) < 100:
            raise ValueError(
                "negatives_per_article must be >= 0, context_chars and body_chars >= 100"
            )


# --- pure helpers ------------------------------------------------------------------------------


def unit_hash(*parts: object) -> float:
    """A stable number in [0, 1) for ``parts`` (split assignment that does not depend on order)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).hexdigest()
    return int(digest[:15], 16) / 16**15


def stratified_groups(labels: Mapping[str, Counter[str]], fraction: float, seed: int) -> set[str]:
    """About ``fraction`` of the groups of ``labels`` (group -> label counts), spread over their
    rare labels: sorted by their count of denies, then unconfirmed, then asserts (ties by seeded
    hash), the groups fall into consecutive blocks of ``round(1 / fraction)`` and each block
    gives its member with the smallest seeded hash (a last, shorter block gives one with its
    share as probability). Hashing FNC-1's stories one by one left validation 47 denies from
    6 stories, 21 from one: too few to fit the denies decision bias on. Pure and independent
    of the input order."""
    if fraction <= 0 or not labels:
        return set()
    size = max(1, round(1 / fraction))

    def rank(group: str) -> tuple[int, int, int, float]:
        c = labels[group]
        return (-c[DENIES], -c[UNCONFIRMED], -c[ASSERTS], unit_hash(seed, "stratum", group))

    ordered = sorted(labels, key=rank)
    chosen = set()
    for i in range(0, len(ordered), size):
        block = ordered[i : i + size]
        if len(block) < size and unit_hash(seed, "last block", len(ordered)) >= len(block) / size:
            continue
        chosen.add(min(block, key=lambda g: unit_hash(seed, "validation", g)))
    return chosen


def choose_annotator(doc: Document) -> tuple[AnnotationSet | None, list[AnnotationSet]]:
    """The primary annotation set of ``doc`` (deterministic) and the other usable ones."""
    usable = [a for a in doc.annotations if a.provenance in USABLE_PROVENANCE]
    if not usable:
        return None, []
    ranked = sorted(
        usable,
        key=lambda a: (
            USABLE_PROVENANCE.index(a.provenance),
            unit_hash(doc.article.id, a.annotator),
            a.annotator,
        ),
    )
    return ranked[0], ranked[1:]


def _gap(a: Span, b: Span) -> int:
    return max(0, max(a.start, b.start) - min(a.end, b.end))


def relation_pairs(
    doc: Document, ann: AnnotationSet, subset: str, negatives: int, context_chars: int
) -> list[StancePair]:
    """Stance pairs of one annotation set: every relation, plus the ``negatives`` nearest unlinked
    (Source, Claim) pairs as ``unrelated`` (near pairs are the hard, realistic negatives)."""
    text = doc.article.text
    spans = {s.id: s for s in ann.spans}
    linked = {(r.source, r.claim) for r in ann.relations}

    def make(src: Span, clm: Span, stance: str) -> StancePair:
        return _pair(
            text,
            (src.start, src.end),
            (clm.start, clm.end),
            stance,
            f"{doc.article.id}:{ann.annotator}:{src.id}:{clm.id}",
            doc.article.id,
            ann.origin or subset,
            context_chars,
        )

    pairs = [make(spans[r.source], spans[r.claim], r.stance) for r in ann.relations]
    sources = [s for s in ann.spans if s.label == "Source"]
    claims = [s for s in ann.spans if s.label == "Claim"]
    candidates = sorted(
        ((s, c) for s in sources for c in claims if (s.id, c.id) not in linked and s.text.strip()),
        key=lambda sc: (_gap(*sc), sc[0].start, sc[1].start),
    )
    pairs.extend(make(s, c, "unrelated") for s, c in candidates[:negatives])
    return pairs


def _pair(
    text: str,
    source: tuple[int, int],
    claim: tuple[int, int],
    stance: str,
    pair_id: str,
    group: str,
    origin: str,
    context_chars: int,
) -> StancePair:
    context = relation_context(text, source, claim, context_chars)
    source_text = text[source[0] : source[1]].strip()
    return validate_pair(
        StancePair(
            id=pair_id,
            claim=text[claim[0] : claim[1]].strip(),
            context=context,
            stance=stance,
            group=group,
            origin=origin,
            # a source partly overlapping the claim is split by a marker; the markers still show it
            source=source_text if source_text in context else None,
        )
    )


def swapped_pairs(
    doc: Document, ann: AnnotationSet, seed: int, context_chars: int
) -> list[StancePair]:
    """Generated pairs: each plain ``asserts`` relation whose cue can be swapped
    (:mod:`pipelines.learn.counterfactual`) once, to ``denies`` or ``unconfirmed`` (chosen by a
    seeded hash of the relation, as is the new cue's wording)."""
    text = doc.article.text
    spans = {s.id: s for s in ann.spans}
    out = []
    for r in ann.relations:
        if r.stance != ASSERTS or not r.cue:
            continue
        src, clm = spans[r.source], spans[r.claim]
        pair_id = f"{doc.article.id}:{ann.annotator}:{src.id}:{clm.id}:swap"
        stance = DENIES if unit_hash(seed, "swap", pair_id) < 0.5 else UNCONFIRMED
        pick = int(unit_hash(seed, "cue", pair_id) * 1_000_000)
        swap = swap_cue(text, (src.start, src.end), (clm.start, clm.end), r.cue, stance, pick)
        if swap is None:
            continue
        origin = f"{GENERATED}:cue-swap:{ann.origin or doc.article.id}"
        out.append(
            _pair(
                swap.text, swap.source, swap.claim, stance, pair_id, doc.article.id, origin,
                context_chars,
            )
        )  # fmt: skip
    return out


def rebuttal_pairs(
    doc: Document, ann: AnnotationSet, seed: int, context_chars: int
) -> list[StancePair]:
    """Generated pairs: each plain ``asserts`` relation that ends its sentence once more, with a
    clause in which another of the article's named sources denies or will not confirm the claim
    (:func:`pipelines.learn.counterfactual.rebut`). Two pairs come from each: the new source's
    (``denies``/``unconfirmed``) and the original source's, still ``asserts``, in the same text:
    news passages often hold both, and each source's stance is its own."""
    text = doc.article.text
    spans = {s.id: s for s in ann.spans}
    names = sorted(
        {s.text.strip() for s in ann.spans if s.label == "Source" and can_rebut(s.text.strip())}
    )
    out = []
    for r in ann.relations:
        if r.stance != ASSERTS:
            continue
        src, clm = spans[r.source], spans[r.claim]
        own = src.text.strip().lower()
        others = [n for n in names if n.lower() not in own and own not in n.lower()]
        if not others:
            continue
        pair_id = f"{doc.article.id}:{ann.annotator}:{src.id}:{clm.id}:rebut"
        stance = DENIES if unit_hash(seed, "rebut", pair_id) < 0.5 else UNCONFIRMED
        pick = int(unit_hash(seed, "clause", pair_id) * 1_000_000)
        name = others[int(unit_hash(seed, "rebutter", pair_id) * len(others))]
        reb = rebut(text, (src.start, src.end), (clm.start, clm.end), name, stance, pick)
        if reb is None:
            continue
        origin = f"{REBUTTAL_ORIGIN}{ann.origin or doc.article.id}"
        for source, label in ((reb.rebutter, stance), (reb.source, ASSERTS)):
            out.append(
                _pair(
                    reb.text, source, reb.claim, label, f"{pair_id}:{label}", doc.article.id,
                    origin, context_chars,
                )
            )  # fmt: skip
    return out


def select_sentences(
    claim: str, sentences: Sequence[str], scores: Sequence[float], max_chars: int
) -> str:
    """The sentences most similar to the claim (``scores``), in text order, within ``max_chars``."""
    chosen, used = [], 0
    for i in sorted(range(len(sentences)), key=lambda i: (-scores[i], i)):
        if used and used + len(sentences[i]) + 1 > max_chars:
            continue
        chosen.append(i)
        used += len(sentences[i]) + 1
    return " ".join(sentences[i] for i in sorted(chosen))[:max_chars]


def shorten_contexts(pairs: Sequence[StancePair], max_chars: int) -> list[StancePair]:
    """Cut long bodies (FNC-1, Emergent) to the sentences most relevant to the claim (TF-IDF).

    The vectoriser is fitted on the sentences of these pairs' bodies only (no labels used).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    long_bodies = sorted({p.context for p in pairs if len(p.context) > max_chars})
    if not long_bodies:
        return list(pairs)
    sentences = {body: split_sentences(body) or [body] for body in long_bodies}
    vec = TfidfVectorizer(sublinear_tf=True, stop_words="english")
    vec.fit([s for body in long_bodies for s in sentences[body]])
    matrices = {}
    out = []
    for p in tqdm(pairs, desc="select body sentences", leave=False, mininterval=5):
        if len(p.context) <= max_chars:
            out.append(p)
            continue
        if p.context not in matrices:
            matrices[p.context] = vec.transform(sentences[p.context])
        scores = (matrices[p.context] @ vec.transform([p.claim]).T).toarray().ravel().tolist()
        context = select_sentences(p.claim, sentences[p.context], scores, max_chars)
        if p.source and p.source not in context:
            context = f"{p.source}: {context}"  # keep the source visible (validate_pair needs it)
        out.append(StancePair(**{**p.__dict__, "context": context}))
    return out


def check_dataset(splits: dict[str, list[dict[str, Any]]], kind: str) -> None:
    """Data invariants: allowed labels only, no group in two splits, test splits hold test items only."""
    tests = STANCE_TEST_SPLITS if kind == "stance" else TAGGER_TEST_SPLITS
    owner: dict[str, str] = {}
    for split, rows in splits.items():
        allowed = tests.get(split)
        for row in rows:
            if kind == "stance" and row["stance"] not in PAIR_STANCES:
                raise ValueError(
                    f"{kind}/{split} {row['id']}: stance {row['stance']!r} not in {PAIR_STANCES}"
                )
            if kind == "tagger" and not set(row["span_labels"]) <= set(LABELS):
                raise ValueError(
                    f"{kind}/{split} {row['id']}: labels {set(row['span_labels'])} not in {LABELS}"
                )
            if allowed is not None and row["subset"] not in allowed:
                raise ValueError(
                    f"{kind}/{split} {row['id']}: from {row['subset']!r}, allowed only {allowed}"
                )
            if allowed is not None and row.get("generated"):
                raise ValueError(f"{kind}/{split} {row['id']}: generated example in a test split")
            if allowed is None and row["subset"] in TEST_ONLY_SUBSETS:
                raise ValueError(
                    f"{kind}/{split} {row['id']}: test-only item ({row['subset']}) in a training split"
                )
            # the other-annotator splits repeat their own test split's articles on purpose
            home = split.removesuffix("_other_annotators")
            if owner.setdefault(row["group"], home) != home:
                raise ValueError(
                    f"{kind}: group {row['group']!r} is in splits {owner[row['group']]!r} and {home!r}"
                )


# --- assembling --------------------------------------------------------------------------------


@dataclass
class Collected:
    stance: dict[str, list[dict[str, Any]]]
    tagger: dict[str, list[dict[str, Any]]]
    counts: Counter[str]


@dataclass
class _Assignment:
    """Rows by split while :func:`collect` assigns them; ``pool_*`` wait for train/validation."""

    stance: defaultdict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    tagger: defaultdict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    pool_stance: list[dict[str, Any]] = field(default_factory=list)
    pool_tagger: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def _add_documents(
    out: _Assignment, docs: Iterable[Document], subset: str, test_split: str | None, p: BuildParams
) -> None:
    """Stance pairs and tagger rows of annotated documents: into ``test_split`` (the project's
    annotations: a seeded share into ``test_annotations``), else into the training pool."""
    counts = out.counts
    for doc in docs:
        counts[f"{subset}_articles"] += 1
        primary, others = choose_annotator(doc)
        if primary is None:
            counts[f"{subset}_unannotated"] += 1
            continue
        split = test_split
        if (
            subset == "annotations"
            and unit_hash(p.seed, "test", doc.article.id) < p.annotations_test_fraction
        ):
            split = "test_annotations"
        srows = [
            stance_row(pr, subset, primary.annotator)
            for pr in relation_pairs(doc, primary, subset, p.negatives_per_article, p.context_chars)
        ]
        trow = tagger_row(doc, primary, subset, True)
        if split is None:
            if p.cue_swaps:
                swaps = swapped_pairs(doc, primary, p.seed, p.context_chars)
                srows += [stance_row(pr, subset, primary.annotator, generated=True) for pr in swaps]
                counts["generated_cue_swaps"] += len(swaps)
            if p.rebuttals:
                rebuttals = rebuttal_pairs(doc, primary, p.seed, p.context_chars)
                srows += [
                    stance_row(pr, subset, primary.annotator, generated=True) for pr in rebuttals
                ]
                counts["generated_rebuttals"] += len(rebuttals)
            out.pool_stance.extend(srows)
            out.pool_tagger.append(trow)
            counts["unused_other_annotators"] += len(others)
        else:
            out.stance[split].extend(srows)
            out.tagger[split].append(trow)
            out.tagger[f"{split}_other_annotators"].extend(
                tagger_row(doc, a, subset, False) for a in others
            )


def _add_pairs(out: _Assignment, pairs: dict[str, Iterable[StancePair]], p: BuildParams) -> None:
    """FNC-1 and Emergent pairs (long bodies shortened): test files to their own test split."""
    for name in PAIR_FILES:
        rows = [
            stance_row(pr, name, None)
            for pr in shorten_contexts(list(pairs.get(name, ())), p.body_chars)
        ]
        if name.endswith("_test"):
            out.stance[f"test_{name.removesuffix('_test')}"].extend(rows)
        else:
            out.pool_stance.extend(rows)


def _split_pool(out: _Assignment, p: BuildParams) -> None:
    """Pooled rows to train or validation by a seeded hash of their group (headline/body groups:
    :func:`stratified_groups` per subset); a row whose group is in a test split is dropped (and
    counted)."""
    test_groups = {
        r["group"] for rows in (*out.stance.values(), *out.tagger.values()) for r in rows
    }
    labels: defaultdict[str, defaultdict[str, Counter[str]]] = defaultdict(
        lambda: defaultdict(Counter)
    )
    for row in out.pool_stance:
        if row["subset"] in STRATIFIED_SUBSETS and row["group"] not in test_groups:
            labels[row["subset"]][row["group"]][row["stance"]] += 1
    held = set().union(
        *(
            stratified_groups(by_group, p.validation_fraction, p.seed)
            for by_group in labels.values()
        )
    )
    for pool, splits, kind in (
        (out.pool_stance, out.stance, "stance"),
        (out.pool_tagger, out.tagger, "tagger"),
    ):
        for row in pool:
            if row["group"] in test_groups:
                out.counts[f"{kind}_dropped_test_overlap"] += 1
                continue
            if row["subset"] in STRATIFIED_SUBSETS:
                split = "validation" if row["group"] in held else "train"
            else:
                split = (
                    "validation"
                    if unit_hash(p.seed, "validation", row["group"]) < p.validation_fraction
                    else "train"
                )
            splits[split].append(row)


def collect(
    polnear: dict[str, Iterable[Document]],
    pairs: dict[str, Iterable[StancePair]],
    annotations: Iterable[Document],
    p: BuildParams,
) -> Collected:
    """Assign every item to its split (pure: the CLI does the file I/O)."""
    out = _Assignment()
    for name in POLNEAR_SPLITS:
        test_split = "test_polnear" if name == "test" else None
        _add_documents(out, polnear.get(name, ()), f"polnear_{name}", test_split, p)
    _add_documents(out, annotations, "annotations", None, p)
    _add_pairs(out, pairs, p)
    _split_pool(out, p)
    stance_splits = {s: out.stance.get(s, []) for s in (*TRAIN_SPLITS, *STANCE_TEST_SPLITS)}
    tagger_splits = {s: out.tagger.get(s, []) for s in (*TRAIN_SPLITS, *TAGGER_TEST_SPLITS)}
    check_dataset(stance_splits, "stance")
    check_dataset(tagger_splits, "tagger")
    return Collected(stance_splits, tagger_splits, out.counts)


# What the tagger rows depend on: its card and build_params.json list only these, so a change
# to the stance pairs alone leaves the tagger dataset, and so its training, as it was (DVC).
TAGGER_PARAMS = ("seed", "validation_fraction", "annotations_test_fraction")
STANCE_ONLY_COUNTS = ("generated_", "stance_")


def kind_params(kind: str, p: BuildParams) -> dict[str, Any]:
    """The build parameters a dataset of ``kind`` depends on (all of them for ``stance``)."""
    params = asdict(p)
    return params if kind == "stance" else {k: params[k] for k in TAGGER_PARAMS}


def kind_counts(kind: str, counts: Counter[str]) -> Counter[str]:
    """The build counts about a dataset of ``kind`` (the stance pairs' only in its own card)."""
    if kind == "stance":
        return counts
    return Counter({k: v for k, v in counts.items() if not k.startswith(STANCE_ONLY_COUNTS)})


def _counts_cell(counts: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"


def dataset_readme(
    kind: str,
    splits: dict[str, list[dict[str, Any]]],
    inputs: dict[str, str],
    p: BuildParams,
    counts: Counter[str],
) -> str:
    """A README.md: sizes, label distribution and provenance per split."""
    lines = [
        f"# claimtrace {kind} dataset",
        "",
        "Built by `python -m pipelines.learn.build_dataset` (see the module docstring for the split rules).",
        "Load with `datasets.load_from_disk(<this folder>)`.",
        "",
        "## Splits",
        "",
        "| split | rows | groups | subsets | labels | generated |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in splits.items():
        if kind == "stance":
            labels = Counter(r["stance"] for r in rows)
        else:
            labels = Counter(label for r in rows for label in r["span_labels"])
        subsets = Counter(r["subset"] for r in rows)
        made = Counter(r["stance"] for r in rows if r.get("generated"))
        lines.append(
            f"| {name} | {len(rows)} | {len({r['group'] for r in rows})} "
            f"| {_counts_cell(subsets)} | {_counts_cell(labels)} | {_counts_cell(made)} |"
        )
    lines += ["", "## Provenance", "", "| input | sha256 |", "|---|---|"]
    lines += [f"| {path} | {digest} |" for path, digest in sorted(inputs.items())]
    lines += ["", "## Build parameters", ""]
    lines += [f"- {k}: {v}" for k, v in kind_params(kind, p).items()]
    lines += ["", "## Counts", ""]
    lines += [f"- {k}: {v}" for k, v in sorted(kind_counts(kind, counts).items())]
    if kind == "stance":
        lines += [
            "",
            "## Notes",
            "",
            "- `stance` is a ClassLabel over asserts, denies, unconfirmed, unrelated.",
            "- Pairs from annotated relations: `claim` is the Claim span, `context` the stretch from the",
            "  source to the claim with `[SRC] … [/SRC]` and `[CLM] … [/CLM]` markers (long claims and gaps",
            f"  elided, see pipelines.core.text.relation_context; {p.context_chars} characters),",
            "  `source` the Source span text.",
            f"- Up to {p.negatives_per_article} nearest unlinked (Source, Claim) pairs per article are `unrelated`.",
            "- **Generated examples** (`generated` = true, origin `generated:cue-swap:...`, column",
            "  *generated* above): each plain `asserts` relation of a training article whose reporting verb",
            '  can be swapped ("X said Y" -> "X denied Y" / "X could not confirm Y") appears once',
            "  more with the swapped cue and the stance the lexicon gives it (pipelines.learn.counterfactual).",
            "- **Generated rebuttals** (origin `generated:rebuttal:...`): each plain `asserts` relation",
            "  ending its sentence once more with a clause in which another named source of the article",
            '  answers ("X said Y." -> "X said Y, but Z denied it."): Z\'s pair `denies`/`unconfirmed`,',
            "  X's pair still `asserts`, both in the same text (pipelines.learn.counterfactual.rebut).",
            "  Generated examples are made from training and validation articles only and never reach a test split.",
            "- FNC-1/Emergent: headline = claim; long bodies are cut to the sentences most similar to the",
            f"  headline (TF-IDF) within {p.body_chars} characters.",
        ]
    else:
        lines += [
            "",
            "## Notes",
            "",
            "- One row per article and annotator: `text` and parallel `span_starts`/`span_ends`/`span_labels`",
            "  (Python code points); trainers tokenise with `offset_mapping` (pipelines.models.encoding.bio_labels).",
            "- `primary` rows are the one annotator used per article; `*_other_annotators` splits hold the",
            "  other annotators of test articles (for agreement), never used in training.",
        ]
    return "\n".join(lines) + "\n"


def _require(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing input; run the convert stage first (dvc repro convert)"
        )
    return path


def _annotations(path: Path) -> Iterator[Document]:
    if path.is_file():
        yield from read_documents(path)


def save(dataset: Any, card: str, params: dict[str, Any], out: Path) -> None:
    """Save atomically: built in a temporary folder that replaces ``out`` when complete."""
    with atomic_dir(out) as tmp:
        # one shard per split: an empty split saved with 0 shards cannot be loaded back (datasets 5.2)
        dataset.save_to_disk(str(tmp), num_shards=dict.fromkeys(dataset, 1))
        write_text(tmp / "README.md", card)
        write_json(tmp / BUILD_PARAMS_FILE, params, indent=2, sort_keys=True)


def command(
    imported: Annotated[
        Path, typer.Argument(help="data/imported (polnear/*.jsonl, pairs/*.jsonl)")
    ],
    annotations: Annotated[
        Path,
        typer.Argument(help="data/annotations/export, the `studio pull` folder (may be absent)"),
    ],
    out: Annotated[Path, typer.Argument(help="output folder: <out>/stance and <out>/tagger")],
    params: Annotated[
        Path, typer.Option(help="params file (section 'build_dataset')")
    ] = DEFAULT_PARAMS,
) -> None:
    """Build the stance-pair and span-tagging datasets, with group-disjoint seeded splits."""
    p = load_section(BuildParams, "build_dataset", params)
    with stage("build_dataset") as counts:
        files = {
            f"polnear/{s}": _require(imported / "polnear" / f"{s}.jsonl") for s in POLNEAR_SPLITS
        }
        files |= {f"pairs/{n}": _require(imported / "pairs" / f"{n}.jsonl") for n in PAIR_FILES}
        ann_file = annotations / ANNOTATIONS_FILE
        if ann_file.is_file():
            files["annotations"] = ann_file
        inputs = {str(path): sha256_file(path) for path in files.values()}
        collected = collect(
            {s: read_documents(files[f"polnear/{s}"]) for s in POLNEAR_SPLITS},
            {n: read_pairs(files[f"pairs/{n}"]) for n in PAIR_FILES},
            _annotations(ann_file),
            p,
        )
        out.mkdir(parents=True, exist_ok=True)
        for kind, splits, features in (
            ("stance", collected.stance, stance_features()),
            ("tagger", collected.tagger, tagger_features()),
        ):
            card = dataset_readme(kind, splits, inputs, p, collected.counts)
            save(to_dataset_dict(splits, features), card, kind_params(kind, p), out / kind)
            counts.update(
                {
                    f"{kind}_{s}": len(rows)
                    for s, rows in splits.items()
                    if s in ("train", "validation")
                }
            )
            counts[f"{kind}_test"] = sum(len(r) for s, r in splits.items() if s.startswith("test"))
        counts.update(collected.counts)


if __name__ == "__main__":
    typer.run(command)
