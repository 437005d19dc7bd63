"""Rule-based claim-attribution annotator: the evaluation baseline and Label Studio pre-annotation.

Per sentence (pysbd, never across a line break) it takes the first attribution trigger — a
reporting verb ("said", "told", "according to", ...) or a lexicon cue ("denied", "could not
confirm", ...) — and reads:

* Source: the noun phrase before the trigger (a capitalised run such as "The White House", a
  pronoun, or "a/the ... spokesman"-style phrase), or the one after "according to", or the one
  after the closing quote in '"...," Smith said'.
* Claim: the complement to the end of the sentence, *including* a leading "that" and any
  quotation marks (as PolNeAR's gold Content spans do), without the sentence's final punctuation. When a
  denial cue follows the verb ("said it could not confirm that ..."), the claim starts after it.
* Denial: the lexicon cue, if any; it also gives the relation's stance.

Spans and relations carry no score: a rule has no probability to give, and a constant would
read as one in Label Studio (a model's regions carry theirs). ``predict_stance``
is the matching (claim, context) pair baseline: token overlap for ``unrelated``, then the
lexicon on the context sentences that share the most words with the claim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipelines.core.document import AnnotationSet, Article, Relation, Span
from pipelines.core.lexicon import ASSERTS, DENIES, UNCONFIRMED, cue_stance, find_cues
from pipelines.core.text import rough_sentences, sentences

VERSION = "2"  # 2: no constant score on regions and relations
MODEL_VERSION = f"rules-{VERSION}"

_REPORTING = re.compile(
    r"\b(?:according\s+to|(?:say|said|says|told|tells|tell|claim(?:s|ed)?|state[sd]|announce[sd]|report(?:s|ed)"
    r"|add(?:s|ed)|argue[sd]|insist(?:s|ed)|explain(?:s|ed)|wr(?:ote|ites)|tweet(?:s|ed)|warn(?:s|ed)"
    r"|note[sd]|confirm(?:s|ed)|acknowledge[sd]|assert(?:s|ed)|allege[sd]|suggest(?:s|ed)|believe[sd]"
    r"|announce|maintain(?:s|ed)|contend(?:s|ed)|admit(?:s|ted)))\b",
    re.IGNORECASE,
)
_ACCORDING = re.compile(r"according\s+to", re.IGNORECASE)
_QUOTES = "\"“”'‘’"
_OPEN_QUOTE = re.compile(r"^\s*[\"“‘']")
_TOKEN = re.compile(r"[A-Za-z0-9](?:[\w’'&-]|\.(?=\w))*\.?|[^\w\s]")
_ABBREVIATIONS = frozenset(
    {
        "mr", "ms", "mrs", "dr", "jr", "sr", "st", "gov", "sen", "rep", "gen", "col", "lt", "prof",
        "inc", "co", "corp",
    }
)  # fmt: skip
_CLOSE_QUOTE = re.compile(r"(?:[,.!?][\"”’']|[\"”])(?=\s|,|$)")
_PRONOUNS = frozenset({"he", "she", "they", "it", "we", "i", "you"})
_CONNECTORS = frozenset(
    {
        "of", "the", "for", "and", "de", "al", "von", "van", "’s", "'s", "&",
    }
)  # fmt: skip
_SKIP_BEFORE_VERB = frozenset(
    {
        "has", "have", "had", "was", "were", "is", "are", "will", "would", "also", "later", "previously",
        "repeatedly", "again", "publicly", "earlier", "then", "flatly", "strongly", "quickly", "firmly",
        "been", "recently", "already", "reportedly", "officially", "initially",
    }
)  # fmt: skip
_ROLE_NOUNS = frozenset(
    {
        "spokesman", "spokeswoman", "spokesperson", "official", "officials", "minister", "ministry",
        "police", "authorities", "statement", "report", "reports", "source", "sources", "lawyer",
        "attorney", "aide", "aides", "campaign", "company", "government", "department", "agency",
        "office", "military", "army", "experts", "analysts", "witnesses", "residents", "people",
        "president", "spokespeople", "representative", "investigators", "prosecutors", "officers",
    }
)  # fmt: skip
_DETERMINERS = frozenset(
    {
        "a", "an", "the", "his", "her", "their", "its", "our", "this", "that", "one", "two",
    }
)  # fmt: skip
_TRAILING_COPULA = re.compile(
    r"(?:\s+(?:was|is|were|are|be|been|being|as|to|had|has|have|all))+\s*$",
    re.IGNORECASE,
)
_CLOSING_CUES = frozenset({"not-true", "false"})
_MAX_NOMINAL = 8
_TELL = re.compile(r"told|tells?|warn(?:s|ed)?", re.IGNORECASE)
_TOLD_WHOM = re.compile(r"\s*(?:[\w’'.-]+\s+){1,3}(?=that\b)")  # "told reporters that X"  # fmt: skip
_STOP = frozenset(
    {
        "a", "an", "the", "of", "to", "in", "on", "at", "for", "and", "or", "but", "is", "are", "was",
        "were", "be", "been", "it", "its", "that", "this", "with", "as", "by", "from", "has", "have",
        "had", "he", "she", "they", "we", "i", "you", "his", "her", "their", "not", "no", "will",
        "would", "could", "can", "says", "said",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Attribution:
    """Offsets (into the article) of one rule hit; any part may be missing."""

    source: tuple[int, int] | None
    claim: tuple[int, int] | None
    denial: tuple[int, int] | None
    cue: str
    stance: str


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Shrink [start, end) past spaces, a leading ",:;" and the sentence's final punctuation.

    A claim that ends in a closing quote keeps it and the punctuation inside it, as PolNeAR's
    gold Content spans do ('“We won,”').
    """
    while start < end and (text[start].isspace() or text[start] in ",:;—–-"):
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end and text[end - 1] not in _QUOTES:
        while end > start and (text[end - 1].isspace() or text[end - 1] in ".!?,;:"):
            end -= 1
    return (start, end) if start < end else None


def _tokens(text: str, start: int, end: int) -> list[tuple[int, int, str]]:
    """Word/punctuation tokens of text[start:end] with article offsets; "Mr." and "U.S." stay whole."""
    out = []
    for m in _TOKEN.finditer(text, start, end):
        s, e, w = m.start(), m.end(), m.group()
        if (
            w.endswith(".")
            and len(w) > 1
            and "." not in w[:-1]
            and w[:-1].lower() not in _ABBREVIATIONS
        ):
            out.extend([(s, e - 1, w[:-1]), (e - 1, e, ".")])
        else:
            out.append((s, e, w))
    return out


def _source_before(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The noun phrase that ends right before ``end`` (the trigger), not reaching before ``start``.

    A pronoun; else a capitalised run ("The White House", "Mr. Smith"), extended back over a role
    noun to its determiner ("a Pentagon spokesman", "the country's foreign ministry").
    """
    tokens = _tokens(text, start, end)
    while tokens and tokens[-1][2].lower() in _SKIP_BEFORE_VERB:
        tokens.pop()
    if not tokens:
        return None
    if tokens[-1][2].lower() in _PRONOUNS:
        return tokens[-1][0], tokens[-1][1]
    i = len(tokens)
    while i > 0:
        word = tokens[i - 1][2]
        if word[0].isupper() or (word.lower() in _CONNECTORS and i < len(tokens)):
            i -= 1
        else:
            break
    if i > 0 and tokens[i - 1][2].lower() in _ROLE_NOUNS:
        i -= 1
        while i > 0 and len(tokens) - i < 8 and tokens[i - 1][2][0].isalnum():
            i -= 1
            if tokens[i][2].lower() in _DETERMINERS:
                break
    while i < len(tokens) and (
        tokens[i][2].lower() in _CONNECTORS - {"the"} or not tokens[i][2][0].isalnum()
    ):
        i += 1
    if i >= len(tokens):
        return _nominal_source(tokens)
    return tokens[i][0], tokens[-1][1]


def _nominal_source(tokens: list[tuple[int, int, str]]) -> tuple[int, int] | None:
    """A lower-case noun phrase that opens its clause with a determiner: "The mayor", "A
    spokeswoman for the authority", "Researchers at the national water institute" (up to
    :data:`_MAX_NOMINAL` words back from the verb, to the clause start)."""
    i = len(tokens)
    while i > 0 and len(tokens) - i < _MAX_NOMINAL and tokens[i - 1][2][0].isalnum():
        i -= 1
    words = [w.lower() for _, _, w in tokens[i:]]
    if not words or words[-1] in _STOP or (i > 0 and tokens[i - 1][2] not in ",;:—–"):
        return None  # mid-clause: "the plan that officials said ..." is not a source
    if words[0] in _DETERMINERS or tokens[i][2][0].isupper():
        return tokens[i][0], tokens[-1][1]
    return None


def _source_after(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The noun phrase from ``start`` up to the first punctuation (after "according to")."""
    tokens = _tokens(text, start, end)
    n = 0
    while n < len(tokens) and tokens[n][2][0].isalnum():
        n += 1
    return (tokens[0][0], tokens[n - 1][1]) if n else None


def _claim_and_denial(
    text: str, start: int, end: int
) -> tuple[tuple[int, int] | None, tuple[int, int] | None, str | None]:
    """(claim, denial cue, its stance) in the complement text[start:end].

    A cue within the first words ("said (that) it could not confirm that X") opens the claim;
    any other ("said the report was false") closes it.
    """
    cues = [c for c in find_cues(text[start:end]) if c.stance != ASSERTS]
    if not cues:
        return _trim(text, start, end), None, None
    cue = cues[0]
    denial = (start + cue.start, start + cue.end)
    if cue.name not in _CLOSING_CUES and len(text[start : start + cue.start].split()) <= 3:
        return _trim(text, denial[1], end), denial, cue.stance
    claim = _trim(text, start, denial[0])
    if claim:
        s, e = claim
        claim = _trim(text, s, s + len(_TRAILING_COPULA.sub("", text[s:e])))
    return claim, denial, cue.stance


def _attribution(text: str, start: int, end: int) -> Attribution | None:
    """The first attribution in the sentence text[start:end], or None."""
    sent = text[start:end]
    lex = {c.start: c for c in find_cues(sent) if c.stance != ASSERTS}
    triggers = sorted(
        [(m.start(), m.end()) for m in _REPORTING.finditer(sent)]
        + [(c.start, c.end) for c in lex.values()]
    )
    if not triggers:
        return None
    t0, t1 = triggers[0]
    a, b = start + t0, start + t1
    cue = text[a:b]
    denial: tuple[int, int] | None = None
    stance: str | None = None
    quote = _OPEN_QUOTE.match(sent)
    close = _CLOSE_QUOTE.search(text, start + quote.end(), a) if quote else None
    if _ACCORDING.fullmatch(cue):
        source = _source_after(text, b, end)
        if text[start:a].strip():  # "<claim>, according to X."
            claim, denial, stance = _claim_and_denial(text, start, a)
        else:  # "According to X, <claim>."
            claim, denial, stance = _claim_and_denial(text, source[1] if source else b, end)
    elif quote and close:  # '"<claim>," Smith said.' / '"<claim>," said Smith.'
        claim = _trim(text, start + quote.end() - 1, close.end())
        if text[close.end() : a].strip():
            source = _source_before(text, close.end(), a)
        else:
            source = _source_after(text, b, end)
    elif text[start:a].rstrip().endswith(","):  # "<claim>, said Smith."
        claim, source = _trim(text, start, a), _source_after(text, b, end)
    elif not text[b:end].strip(" .!?\"”’'"):  # "<claim>, Smith said."
        source = _source_before(text, start, a)
        comma = text.rfind(",", start, source[0] if source else a)
        claim = _trim(text, start, comma) if comma > start else None
    else:
        source = _source_before(text, start, a)
        if t0 in lex:  # the trigger is the denial cue itself: "Ukraine denied that ..."
            claim, denial, stance = _trim(text, b, end), (a, b), lex[t0].stance
        else:
            told = _TOLD_WHOM.match(text, b, end) if _TELL.fullmatch(cue) else None
            claim, denial, stance = _claim_and_denial(text, told.end() if told else b, end)
    return Attribution(source, claim, denial, cue, stance or cue_stance(cue))


def annotate(article: Article) -> AnnotationSet:
    """Rule-based spans and relations on ``article`` (provenance "prediction", annotator "rules")."""
    text = article.text
    spans: dict[tuple[str, int, int], Span] = {}
    relations: list[Relation] = []

    def add(label: str, offsets: tuple[int, int] | None) -> str | None:
        if offsets is None:
            return None
        key = (label, *offsets)
        if key not in spans:
            s, e = offsets
            spans[key] = Span(f"rules-{len(spans) + 1}", label, s, e, text[s:e])
        return spans[key].id

    for start, end in sentences(text):
        att = _attribution(text, start, end)
        if att is None:
            continue
        source_id = add("Source", att.source)
        claim_id = add("Claim", att.claim)
        add("Denial", att.denial)
        if source_id and claim_id:
            relations.append(Relation(source_id, claim_id, att.stance, att.cue))
    return AnnotationSet(
        annotator="rules",
        provenance="prediction",
        spans=tuple(sorted(spans.values(), key=lambda s: (s.start, s.end, s.label))),
        relations=tuple(relations),
        model_version=MODEL_VERSION,
    )


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP and len(w) > 1}


_HEDGE = re.compile(
    r"\b(?:reportedly|allegedly|claim(?:s|ed)?|rumou?r(?:s|ed)?|unconfirmed|unverified|purported(?:ly)?"
    r"|may|might|could|appears?|apparently|according\s+to|suggest(?:s|ed)?|believed)\b",
    re.IGNORECASE,
)


def predict_stance(
    claim: str, context: str, source: str | None = None, min_overlap: float = 0.3
) -> str:
    """asserts/denies/unconfirmed/unrelated for a (claim, context) pair, by lexicon and overlap.

    ``unrelated`` when under ``min_overlap`` of the claim's content words occur in the context.
    Otherwise the context sentences sharing most words with the claim (and naming ``source``,
    when given and present) are read: a denial cue -> denies; a refusal to confirm or a hedge
    ("reportedly", "allegedly", "could") -> unconfirmed; else asserts.
    """
    cw = _words(claim)
    if not cw or len(cw & _words(context)) / len(cw) < min_overlap:
        return "unrelated"
    sents = rough_sentences(context) or [context]
    if source and any(source in s for s in sents):
        sents = [s for s in sents if source in s]
    scored = sorted(sents, key=lambda s: len(cw & _words(s)), reverse=True)
    best = len(cw & _words(scored[0]))
    top = [s for s in scored if len(cw & _words(s)) >= max(1, best - 1)][:3]
    stances = {cue_stance(s) for s in top}
    if DENIES in stances:
        return DENIES
    if UNCONFIRMED in stances or any(_HEDGE.search(s) for s in top):
        return UNCONFIRMED
    return ASSERTS
