"""Strip what a saved news page carries besides the article, without touching article sentences.

Rules work on whole lines (a pattern must match the entire stripped line, case-insensitive), so
a sentence that merely mentions comments or cookies is never removed:

1. photo captions: a line that appears more than once and looks like a caption (has a photo
   credit, or is directly followed by one) is dropped everywhere, as is any line that is or ends
   in a photo credit ("Photo: Name / (Reuters)", "REUTERS/Name"); any other repeated line (e.g.
   the headline shown twice) keeps its first occurrence only;
2. share/subscribe/cookie/advertisement lines (``BOILERPLATE``) are dropped wherever they are;
3. the footer is cut from its first marker (``FOOTER_MARKERS``: sign-in prompts, commenting rules,
   link lists) on, but only in the trailing run of footer-like lines after the last prose
   paragraph, so a "Related" line inside the story does not cut the story.

Paragraphs stay separated by one blank line.
"""

from __future__ import annotations

import re

_FLAGS = re.IGNORECASE


def _line(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"(?:" + "|".join(alternatives) + r")[.!:]?", _FLAGS)


FOOTER_MARKERS: tuple[re.Pattern[str], ...] = (
    # sign-in prompts under the article
    _line(
        r"(?:sign|log) ?in(?: (?:to|or register to) (?:comment|reply|join the (?:conversation|discussion)).*)?",
        r"create (?:an? )?(?:free )?account.*",
        r"register(?: to comment)?",
    ),
    # comment sections and commenting rules
    _line(
        r"(?:\d+ )?comments?(?: \(\d+\))?",
        r"comments are (?:moderated|closed|reviewed).*",
        r"please (?:keep|be) (?:your )?(?:comments?|respectful|civil).*",
        r"(?:leave|post) a (?:comment|reply).*",
        r"(?:join|start) the (?:conversation|discussion).*",
        r"(?:read|view) (?:our )?(?:community|comment) (?:guidelines|rules).*",
    ),
    # link lists after the story
    _line(
        r"top (?:news|stories)(?: today)?",
        r"most (?:read|popular|viewed|shared)(?: today)?",
        r"related(?: (?:articles?|stories|coverage|news|content|topics))?",
        r"more (?:stories|news) from .{1,60}",
        r"read (?:more|next)",
        r"you (?:may|might) also like",
        r"recommended(?: for you)?",
        r"trending(?: now)?",
    ),
)

BOILERPLATE: tuple[re.Pattern[str], ...] = (
    # share buttons
    _line(
        r"share(?: this(?: article| story)?| on \w+| via \w+)?",
        r"tweet",
        r"email",
        r"print",
        r"copy link",
    ),
    # newsletter and subscription prompts
    _line(
        r"(?:subscribe|sign up)(?: now| today)?(?: (?:to|for) .{0,60}(?:newsletter|briefing|updates).*)?"
    ),
    # cookie banners
    _line(
        r"(?:we|this (?:web)?site) uses? cookies.*",
        r"(?:accept|reject|manage)(?: all)? cookies.*",
        r"cookie (?:policy|settings|preferences)",
    ),
    # ad slots, skip links and bare account links in the page chrome
    _line(
        r"advertisement",
        r"skip to (?:main )?content",
        r"(?:sign|log) ?(?:in|out)",
        r"register",
        r"create (?:an? )?(?:free )?account",
    ),
)

# a photo credit: "Photo: ...", "... REUTERS/Name", "... (Reuters)" at the end of a line
CREDIT = re.compile(
    r"^(?:photo|image|picture|photograph|credit)s?\s*:|\b(?:reuters|ap photo|afp|getty images|epa)\s*/"
    r"|[(/]\s*(?:reuters|ap|afp|getty images|epa)\s*\)?\s*$",
    _FLAGS,
)
# a caption even when it appears once: a bare credit, or a line ending in "Photo: Name / Agency"
# (no sentence punctuation at the end, so an article sentence never matches)
CAPTION = re.compile(
    r"(?:(?:^|.*\b)(?i:photo|image|picture|photograph|credit)s?\s*:[^!?]{1,80}"
    r"|.*\b(?:REUTERS|AP Photo|AFP|EPA|Getty Images)\s*/\s*[A-Z][^!?]{0,60})(?<![.!?])",
)
FOOTER_WORDS = re.compile(
    r"comment|sign in|log in|account|moderat|respectful|newsletter|subscri|cookie", _FLAGS
)


def _matches(patterns: tuple[re.Pattern[str], ...], line: str) -> bool:
    return any(p.fullmatch(line) for p in patterns)


def _key(line: str) -> str:
    return " ".join(line.split()).casefold()


def _footer_like(line: str) -> bool:
    """Could belong to the footer: a marker, footer vocabulary, or a headline-like short line."""
    line = line.strip()
    return (
        not line
        or _matches(FOOTER_MARKERS, line)
        or _matches(BOILERPLATE, line)
        or bool(FOOTER_WORDS.search(line))
        or len(line) <= 120
        or (len(line) <= 200 and not line.rstrip("\"'”’)").endswith((".", "!", "?")))
    )


def _drop_captions(lines: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    for line in lines:
        if line:
            seen[_key(line)] = seen.get(_key(line), 0) + 1
    next_line = [""] * len(lines)
    following = ""
    for i in range(len(lines) - 1, -1, -1):  # next non-blank line, to see a caption's credit
        next_line[i] = following
        following = lines[i] or following
    kept, emitted = [], set()
    for line, nxt in zip(lines, next_line, strict=True):
        key, line_s = _key(line), line.strip()
        if line and len(line_s) <= 400 and CAPTION.fullmatch(line_s):
            continue
        if line and seen[key] > 1:
            if (
                CREDIT.search(line_s)
                or (CREDIT.search(nxt.strip()) and seen.get(_key(nxt), 0) > 1)
                or key in emitted
            ):
                continue
            emitted.add(key)
        kept.append(line)
    return kept


def _cut_footer(lines: list[str]) -> list[str]:
    start = len(lines)
    while start > 0 and _footer_like(lines[start - 1]):
        start -= 1
    # a marker needs story text before it, so a "Most read" box above the story cuts nothing
    story = next(
        (i for i, line in enumerate(lines) if line and not _matches(FOOTER_MARKERS, line.strip())),
        None,
    )
    for i in range(start, len(lines)):
        if story is not None and i > story and _matches(FOOTER_MARKERS, lines[i].strip()):
            return lines[:i]
    return lines


def clean_text(text: str) -> str:
    """The article text of a saved page: captions, boilerplate and footer removed (see module doc)."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    lines = [line if line.strip() else "" for line in lines]
    lines = _drop_captions(lines)
    lines = [line for line in lines if not _matches(BOILERPLATE, line.strip())]
    lines = _cut_footer(lines)
    paragraphs, current = [], []
    for line in [*lines, ""]:
        if line:
            current.append(line)
        elif current:
            paragraphs.append("\n".join(current))
            current = []
    return "\n\n".join(paragraphs)
