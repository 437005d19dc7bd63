"""build_dataset on small synthetic corpora: split rules, labels, provenance, edge cases."""

from __future__ import annotations

import random
import shutil
from collections import Counter
from pathlib import Path

import pytest

from pipelines.core.document import (
    PAIR_STANCES,
    AnnotationSet,
    Article,
    Document,
    Relation,
    Span,
    StancePair,
    validate,
    write_documents,
    write_pairs,
)
from pipelines.core.lexicon import cue_stance
from pipelines.core.text import CLM_OPEN, SRC_OPEN, split_sentences
from pipelines.learn.build_dataset import (
    TAGGER_PARAMS,
    BuildParams,
    check_dataset,
    choose_annotator,
    collect,
    command,
    relation_pairs,
    select_sentences,
    stratified_groups,
)

REPO = Path(__file__).resolve().parents[1]
PARAMS = BuildParams(
    seed=13,
    validation_fraction=0.25,
    annotations_test_fraction=0.3,
    negatives_per_article=2,
    context_chars=300,
    body_chars=300,
    cue_swaps=True,
    rebuttals=True,
)

NAMES = [
    "Senator Reyes",
    "The ministry",
    "A spokesman",
    "Dr. Okafor",
    "Police",
    "The mayor",
    "Analysts",
]
CLAIMS = [
    "taxes will rise",
    "the bridge is unsafe",
    "the vote was rigged",
    "prices fell in May",
    "the deal is off",
]
CUES = {
    "asserts": "said that",
    "denies": "denied that",
    "unconfirmed": "suggested that maybe",
}


def make_document(
    seed: int, annotators: tuple[str, ...] = ("ann1",), provenance: str = "gold"
) -> Document:
    """An article of attribution sentences with Source/Claim/Denial spans and stance relations."""
    rng = random.Random(seed)
    parts, plan = [], []
    pos = 0
    for k in range(rng.randint(3, 6)):
        name, claim, stance = (
            rng.choice(NAMES),
            rng.choice(CLAIMS),
            rng.choice(list(CUES)),
        )
        sent = (
            f"{name} {CUES[stance]} {claim} (story {seed}-{k}).\n"
            if k % 2
            else f"{name} {CUES[stance]} {claim} (story {seed}-{k}). "
        )
        plan.append((pos, name, claim, stance, sent))
        parts.append(sent)
        pos += len(sent)
    text = "".join(parts)
    article = Article.from_text(text, title=f"Story {seed}")
    sets = []
    for who in annotators:
        spans, rels = [], []
        for k, (at, name, claim, stance, sent) in enumerate(plan):
            s = Span(f"S{k}", "Source", at, at + len(name), name)
            c0 = at + sent.index(claim)
            c = Span(f"C{k}", "Claim", c0, c0 + len(claim), claim)
            spans += [s, c]
            if stance == "denies":
                d0 = at + sent.index("denied")
                spans.append(Span(f"D{k}", "Denial", d0, d0 + len("denied"), "denied"))
            rels.append(Relation(s.id, c.id, stance, cue=CUES[stance].split()[0]))
        sets.append(
            AnnotationSet(
                who,
                provenance,
                tuple(spans),
                tuple(rels),
                origin=f"synthetic:{seed}:{who}",
            )
        )
    return validate(Document(article, tuple(sets)))


def make_pairs(prefix: str, n: int, seed: int) -> list[StancePair]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        body_id = f"{prefix}-body{i // 3}"
        body = " ".join(
            f"Sentence {j} of {body_id} mentions {rng.choice(CLAIMS)}." for j in range(40)
        )
        out.append(
            StancePair(
                f"{prefix}-{i}",
                rng.choice(CLAIMS).capitalize(),
                body,
                rng.choice(PAIR_STANCES),
                body_id,
                f"{prefix}:row{i}",
            )
        )
    return out


def write_corpus(
    root: Path, n_docs: int = 12, n_pairs: int = 24, annotations: int | None = 6
) -> tuple[Path, Path]:
    """data/imported + data/annotations folders with synthetic content under ``root``."""
    imported, ann = root / "imported", root / "annotations"
    for k, split in enumerate(("train", "dev", "test")):
        docs = [
            make_document(1000 * k + i, ("ann1", "ann2") if i % 3 == 0 else (f"ann{i % 2}",))
            for i in range(n_docs if split == "train" else max(2, n_docs // 4))
        ]
        write_documents(imported / "polnear" / f"{split}.jsonl", docs)
    for k, name in enumerate(("fnc1_train", "fnc1_test", "emergent_train", "emergent_test")):
        write_pairs(imported / "pairs" / f"{name}.jsonl", make_pairs(name, n_pairs, k))
    ann.mkdir(parents=True, exist_ok=True)
    if annotations is not None:
        write_documents(
            ann / "annotations.jsonl",
            [make_document(9000 + i, ("alice",)) for i in range(annotations)],
        )
    return imported, ann


def build(tmp_path: Path, **kw) -> tuple[Path, object, object]:
    from datasets import load_from_disk

    imported, ann = write_corpus(tmp_path, **kw)
    shutil.copy(REPO / "params.ci.yaml", tmp_path / "params.yaml")
    out = tmp_path / "datasets"
    command(imported, ann, out, params=tmp_path / "params.yaml")
    return out, load_from_disk(str(out / "stance")), load_from_disk(str(out / "tagger"))


def assert_invariants(stance, tagger) -> None:
    names = stance["train"].features["stance"].names
    rows = {k: [{**r, "stance": names[r["stance"]]} for r in v] for k, v in stance.items()}
    check_dataset(rows, "stance")  # re-check what was saved
    check_dataset({k: list(v) for k, v in tagger.items()}, "tagger")
    assert names == list(PAIR_STANCES)
    for kind, dd in (("stance", stance), ("tagger", tagger)):
        seen: dict[str, str] = {}
        for split, ds in dd.items():
            for group in set(ds["group"]):
                home = split.removesuffix("_other_annotators")
                assert seen.setdefault(group, home) == home, f"{kind}: {group} in two splits"
        for split in ("train", "validation"):
            assert not {"polnear_test", "fnc1_test", "emergent_test"} & set(dd[split]["subset"])


def test_build_writes_group_disjoint_splits_with_cards(tmp_path):
    out, stance, tagger = build(tmp_path)
    assert set(stance) == {
        "train",
        "validation",
        "test_polnear",
        "test_fnc1",
        "test_emergent",
        "test_annotations",
    }
    assert_invariants(stance, tagger)
    assert set(stance["test_fnc1"]["subset"]) == {"fnc1_test"}
    assert set(stance["test_emergent"]["subset"]) == {"emergent_test"}
    assert set(stance["test_polnear"]["subset"]) == {"polnear_test"}
    assert len(stance["train"]) and len(stance["validation"]) and len(tagger["train"])
    # relation pairs carry typed markers; FNC-1 bodies were cut to the context budget
    polnear = [r for r in stance["train"] if r["subset"].startswith("polnear")]
    assert all(SRC_OPEN in r["context"] and CLM_OPEN in r["context"] for r in polnear)
    assert max(len(r["context"]) for r in stance["test_fnc1"]) <= 300
    assert "unrelated" in {
        stance["train"].features["stance"].int2str(x) for x in stance["train"]["stance"]
    }
    # one annotator per article in training; other annotators of test articles kept apart
    assert all(tagger["train"]["primary"])
    assert len(tagger["test_polnear_other_annotators"]) >= 1
    assert not any(tagger["test_polnear_other_annotators"]["primary"])
    for kind in ("stance", "tagger"):
        card = (out / kind / "README.md").read_text()
        assert "| train |" in card and "sha256" in card and "polnear/test.jsonl" in card
    # spans are exact code-point slices of the text
    for row in tagger["train"]:
        assert all(
            0 <= s < e <= len(row["text"])
            for s, e in zip(row["span_starts"], row["span_ends"], strict=True)
        )


def test_build_is_deterministic(tmp_path):
    _, a, _ = build(tmp_path / "a")
    _, b, _ = build(tmp_path / "b")
    for split in a:
        assert a[split]["id"] == b[split]["id"]


@pytest.mark.parametrize("annotations", [None, 0])
def test_missing_or_empty_annotations_are_fine(tmp_path, annotations):
    _, stance, tagger = build(tmp_path, annotations=annotations)
    assert len(stance["test_annotations"]) == 0 and len(tagger["test_annotations"]) == 0
    assert "annotations" not in set(stance["train"]["subset"])


def test_missing_import_names_the_file_and_the_fix(tmp_path):
    imported, ann = write_corpus(tmp_path)
    (imported / "pairs" / "fnc1_test.jsonl").unlink()
    shutil.copy(REPO / "params.ci.yaml", tmp_path / "params.yaml")
    with pytest.raises(FileNotFoundError, match=r"fnc1_test\.jsonl.*convert"):
        command(imported, ann, tmp_path / "out", params=tmp_path / "params.yaml")


def test_training_items_sharing_a_group_with_a_test_set_are_dropped():
    doc = make_document(1)
    train_pair = StancePair("p1", "Taxes will rise", "Body.", "asserts", "shared-body", "x")
    test_pair = StancePair("p2", "Taxes will fall", "Body.", "denies", "shared-body", "y")
    got = collect(
        {"train": [doc]},
        {"fnc1_train": [train_pair], "fnc1_test": [test_pair]},
        [],
        PARAMS,
    )
    assert got.counts["stance_dropped_test_overlap"] == 1
    assert [r["id"] for r in got.stance["test_fnc1"]] == ["p2"]
    assert "p1" not in {r["id"] for s in ("train", "validation") for r in got.stance[s]}


def _stories(n: int, denies_in: int) -> dict[str, Counter[str]]:
    """``n`` groups of 10 pairs; the first ``denies_in`` hold 1..denies_in denies each."""
    return {
        f"s{i}": Counter(asserts=10 - min(i + 1, 10), denies=i + 1 if i < denies_in else 0)
        for i in range(n)
    }


@pytest.mark.parametrize(
    ("n", "fraction", "expected"),
    [
        (0, 0.1, 0),  # no groups
        (50, 0.0, 0),  # no validation asked for
        (50, 0.1, 5),  # five full blocks of ten
        (40, 0.25, 10),
        (3, 1.0, 3),  # every group
    ],
)
def test_stratified_groups_takes_the_fraction(n, fraction, expected):
    assert len(stratified_groups(_stories(n, n // 2), fraction, 13)) == expected


def test_stratified_groups_spread_the_rare_label_and_ignore_order():
    labels = _stories(100, 30)  # 30 groups hold denies: the 3 top blocks
    chosen = stratified_groups(labels, 0.1, 13)
    assert len(chosen) == 10
    assert sum(labels[g]["denies"] > 0 for g in chosen) == 3  # one per block, never by luck 0
    shuffled = dict(random.Random(1).sample(sorted(labels.items()), len(labels)))
    assert stratified_groups(shuffled, 0.1, 13) == chosen
    assert stratified_groups(labels, 0.1, 14) != chosen  # the seed picks within blocks


def test_stratified_groups_last_short_block_counts_by_its_share():
    # 5 groups, blocks of 10: one group or none, over seeds about half the time
    picked = [len(stratified_groups(_stories(5, 2), 0.1, seed)) for seed in range(200)]
    assert set(picked) == {0, 1}
    assert 60 < sum(picked) < 140


def test_headline_body_validation_is_stratified():
    pairs = [
        StancePair(
            f"p{i}-{j}",
            f"Claim {i}",
            "Body.",
            "denies" if i < 10 and j == 0 else "asserts",
            f"fnc1:story:{i}",
            "x",
        )
        for i in range(40)
        for j in range(2)
    ]
    got = collect({}, {"fnc1_train": pairs}, [], PARAMS)  # validation_fraction 0.25: blocks of 4
    held = {r["group"] for r in got.stance["validation"]}
    assert len(held) == 10
    assert sum(int(g.rsplit(":", 1)[1]) < 10 for g in held) in (2, 3)  # denies-stories' blocks


def test_check_dataset_rejects_leaks_and_bad_labels():
    row = {"id": "r", "group": "g", "subset": "fnc1_train", "stance": "asserts"}
    with pytest.raises(ValueError, match=r"two splits|in splits"):
        check_dataset({"train": [row], "validation": [dict(row)]}, "stance")
    with pytest.raises(ValueError, match="allowed only"):
        check_dataset({"test_fnc1": [row]}, "stance")
    with pytest.raises(ValueError, match="test-only"):
        check_dataset({"train": [{**row, "subset": "fnc1_test"}]}, "stance")
    with pytest.raises(ValueError, match="stance"):
        check_dataset({"train": [{**row, "stance": "agree"}]}, "stance")
    made = {**row, "subset": "polnear_test", "generated": True}
    with pytest.raises(ValueError, match="generated example in a test split"):
        check_dataset({"test_polnear": [made]}, "stance")


def test_generated_examples_are_marked_and_never_in_a_test_split(tmp_path):
    out, stance, _ = build(tmp_path)
    names = stance["train"].features["stance"].names
    made = {split: [r for r in ds if r["generated"]] for split, ds in stance.items() if len(ds)}
    assert made["train"], "the synthetic corpus has swappable 'said that' attributions"
    for split, rows in made.items():
        assert not split.startswith("test") or not rows, split
        for r in rows:
            if r["origin"].startswith("generated:rebuttal:"):
                continue  # next test
            assert r["origin"].startswith("generated:cue-swap:")
            assert names[r["stance"]] in ("denies", "unconfirmed")
            cue = r["context"].split("[/SRC]", 1)[1].split("[CLM]", 1)[0]
            assert cue_stance(cue) == names[r["stance"]], cue
    assert not any(r["generated"] for r in stance["train"] if r["subset"].startswith("fnc1"))
    card = (out / "stance" / "README.md").read_text()
    assert "Generated examples" in card and "| generated |" in card


def test_rebuttals_pair_both_sources_in_one_text(tmp_path):
    _, stance, _ = build(tmp_path)
    names = stance["train"].features["stance"].names
    rows = [
        {**r, "stance": names[r["stance"]]}
        for split, ds in stance.items()
        for r in ds
        if r["origin"].startswith("generated:rebuttal:")
    ]
    assert rows, "the synthetic corpus has plain attributions and several named sources"
    assert all(r["generated"] and not r["subset"].startswith(("fnc1", "emergent")) for r in rows)
    by_relation: dict[str, dict[str, dict]] = {}
    for r in rows:
        base, _, label = r["id"].rpartition(":")
        by_relation.setdefault(base, {})[label] = r
    for pair in by_relation.values():
        (label,) = set(pair) - {"asserts"}
        first, second = pair["asserts"], pair[label]
        assert first["stance"] == "asserts" and second["stance"] == label
        assert first["source"] != second["source"] and first["claim"] == second["claim"]
        # the rebutting source comes after the claim, its clause's cue right after it
        after = second["context"].split("[/SRC]", 1)[1]
        assert second["context"].index("[CLM]") < second["context"].index("[SRC]")
        assert cue_stance(after) == label, after


def test_relation_pairs_and_nearest_negatives():
    doc = make_document(7)
    ann = doc.annotations[0]
    pairs = relation_pairs(doc, ann, "polnear_train", negatives=2, context_chars=300)
    related = [p for p in pairs if p.stance != "unrelated"]
    assert len(related) == len(ann.relations)
    assert len(pairs) - len(related) == min(2, len(ann.relations) * (len(ann.relations) - 1))
    for p in pairs:
        assert p.source in p.context and p.group == doc.article.id


def test_choose_annotator_is_deterministic_and_prefers_gold():
    doc = make_document(3, ("b", "a", "c"))
    first, others = choose_annotator(doc)
    again, _ = choose_annotator(Document(doc.article, tuple(reversed(doc.annotations))))
    assert first.annotator == again.annotator and len(others) == 2
    silver = AnnotationSet("zz", "silver")
    gold = AnnotationSet("yy", "gold")
    assert choose_annotator(Document(doc.article, (silver, gold)))[0].annotator == "yy"
    assert choose_annotator(Document(doc.article, (AnnotationSet("m", "prediction"),)))[0] is None


def test_select_sentences_keeps_the_relevant_ones_in_order():
    body = (
        "Cats sleep a lot. The vote was rigged, say critics. Dogs bark.\nThe vote count was slow."
    )
    sents = split_sentences(body)
    assert sents == [
        "Cats sleep a lot.",
        "The vote was rigged, say critics.",
        "Dogs bark.",
        "The vote count was slow.",
    ]
    got = select_sentences("vote rigged", sents, [0.0, 0.9, 0.0, 0.5], max_chars=60)
    assert got == "The vote was rigged, say critics. The vote count was slow."


def test_partly_overlapping_source_and_claim_still_make_a_pair():
    text = "Aides to the governor said the governor will resign."
    src = Span("S", "Source", 0, 21, text[0:21])  # "Aides to the governor"
    clm = Span("C", "Claim", 13, 51, text[13:51])  # "governor said the governor will resign"
    ann = AnnotationSet("a", "gold", (src, clm), (Relation("S", "C", "asserts"),))
    doc = validate(Document(Article.from_text(text), (ann,)))
    (pair,) = relation_pairs(doc, ann, "polnear_train", negatives=0, context_chars=300)
    assert SRC_OPEN in pair.context and CLM_OPEN in pair.context and pair.stance == "asserts"


def test_every_version_of_an_article_lands_in_one_split(tmp_path):
    """An article's id is its identity (ingest: its file, URL or given id), its text hash its
    version: two annotated versions of one article share a group, hence a split."""
    from datasets import load_from_disk

    imported, ann = write_corpus(tmp_path, annotations=None)
    versions = []
    for i in range(8):
        doc = make_document(9000 + i, ("alice",))
        edited = Article(id=doc.article.id, text=doc.article.text + " It was updated later.")
        versions += [doc, Document(edited, doc.annotations)]
    write_documents(ann / "annotations.jsonl", versions)
    shutil.copy(REPO / "params.ci.yaml", tmp_path / "params.yaml")
    command(imported, ann, tmp_path / "datasets", params=tmp_path / "params.yaml")
    tagger = load_from_disk(str(tmp_path / "datasets" / "tagger"))
    home: dict[str, set[str]] = {}
    for split, ds in tagger.items():
        for row in ds:
            if row["subset"] == "annotations":
                home.setdefault(row["group"], set()).add(split.removesuffix("_other_annotators"))
    assert len(home) == 8 and all(len(splits) == 1 for splits in home.values()), home


def test_the_tagger_dataset_records_only_what_its_rows_depend_on(tmp_path):
    """A change to the stance pairs alone (cue swaps, rebuttals, contexts) must leave the tagger
    dataset's files as they were, or DVC retrains the tagger for nothing."""
    import json

    out, _, _ = build(tmp_path)
    params = json.loads((out / "tagger" / "build_params.json").read_text())
    assert set(params) == set(TAGGER_PARAMS)
    card = (out / "tagger" / "README.md").read_text()
    assert "generated_" not in card and "rebuttals" not in card and "context_chars" not in card
    stance_card = (out / "stance" / "README.md").read_text()
    assert "generated_rebuttals" in stance_card and "- rebuttals: True" in stance_card
