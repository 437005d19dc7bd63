"""Strip what a saved news page carries besides the article, without touching article sentences.

Rules work on whole lines (a pattern must match the entire stripped line, case-insensitive), so
a sentence that merely mentions comments or cookies is never removed:

1. photo captions: a line that appears more than once and looks like a caption (has a photo
   credit, or is directly followed by one) is dropped everywhere, as is any line that is or ends
   in a photo credit ("Photo: Name / (Reuters)", "REUTERS/Name", "... | Photo Credit: AFP") and
   any line that is such a caption without its credit (pages print the caption, then the
   caption with its credit); any other repeated line (e.g. the headline shown twice) keeps its
   first occurrence only;
2. share/subscribe/cookie/advertisement lines (``BOILERPLATE``) are dropped wherever they are;
3. the footer is cut from its first marker (``FOOTER_MARKERS``: sign-in prompts, commenting rules,
   link lists) on, but only in the trailing run of footer-like lines after the last prose
   paragraph, so a "Related" line inside the story does not cut the story.

Paragraphs stay separated by one blank line.

A plain-text copy of a whole page (:func:`clean_page`, for ``.txt`` inputs) also has a header:

4. the title: a first paragraph of one short line without a closing full stop becomes the
   ``title`` field (and a later copy of it goes);
5. the date line: among the first lines, one made of a date, times, time zones, "Updated" /
   "Published" words and at most a place name ("January 06, 2024 04:47 am | Updated 07:54 am
   IST - Kyiv, Ukraine") becomes the ``date`` field (ISO ``YYYY-MM-DD``);
6. above the date line: a byline ("By ...") goes, and a summary paragraph that the story repeats
   further down goes (the story keeps its own copy, in place).
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


CREDIT_TAIL = re.compile(
    r"\s*[|/–—-]?\s*(?:(?:photo|image|picture|photograph)s?\s*)?credits?\s*:.*$"
    r"|\s*[|/–—-]?\s*(?:photo|image|picture|photograph)s?\s*:.*$",
    _FLAGS,
)


def _caption_stems(lines: list[str]) -> set[str]:
    """Keys of captions printed without their credit: a credited caption minus the credit."""
    stems = set()
    for line in lines:
        line_s = line.strip()
        if line_s and (CAPTION.fullmatch(line_s) or CREDIT.search(line_s)):
            stem = CREDIT_TAIL.sub("", line_s)
            if stem and stem != line_s:
                stems.add(_key(stem))
    return stems


def _drop_captions(lines: list[str]) -> list[str]:
    stems = _caption_stems(lines)
    lines = [line for line in lines if not line or _key(line) not in stems]
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


def _lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return [line if line.strip() else "" for line in lines]


def _paragraphs(lines: list[str]) -> str:
    paragraphs, current = [], []
    for line in [*lines, ""]:
        if line:
            current.append(line)
        elif current:
            paragraphs.append("\n".join(current))
            current = []
    return "\n\n".join(paragraphs)


def _clean_lines(lines: list[str]) -> list[str]:
    lines = _drop_captions(lines)
    lines = [line for line in lines if not _matches(BOILERPLATE, line.strip())]
    return _cut_footer(lines)


def clean_text(text: str) -> str:
    """The article text of a saved page: captions, boilerplate and footer removed (see module doc)."""
    return _paragraphs(_clean_lines(_lines(text)))


# --- the header of a plain-text page copy ------------------------------------------------------

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
DATE = re.compile(
    rf"\b(?:(?P<m1>{_MONTH})\s+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y1>\d{{4}})"
    rf"|(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?\s+(?P<m2>{_MONTH}),?\s+(?P<y2>\d{{4}})"
    r"|(?P<y3>\d{4})-(?P<m3>\d{2})-(?P<d3>\d{2}))\b",
    _FLAGS,
)
# what else a date line may hold: times, time zones, publishing words, separators
DATE_LINE_EXTRAS = re.compile(
    r"\b\d{1,2}[:.]\d{2}|(?i:\b(?:am|pm|a\.m\.|p\.m\.)(?!\w))"
    r"|(?i:\b(?:updated|published|posted|modified|last|first|on|at|dated?|time)\b)"
    r"|\b[A-Z]{2,5}\b|(?i:\b(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\b)|[|,:·•–—\-/()]",
)
PLACE_WORDS = 4  # "Kyiv, Ukraine" after the date and times: a dateline's place, not a sentence
BYLINE = re.compile(r"by\s+\S.{0,100}", _FLAGS)


def parse_date(line: str) -> str | None:
    """The first date in ``line`` as ``YYYY-MM-DD`` (None when there is none or it is invalid)."""
    import datetime

    m = DATE.search(line)
    if m is None:
        return None
    year, month, day = (
        (m["y1"], m["m1"], m["d1"])
        if m["y1"]
        else (m["y2"], m["m2"], m["d2"])
        if m["y2"]
        else (m["y3"], m["m3"], m["d3"])
    )
    number = int(month) if month.isdigit() else _month_number(month)
    try:
        return datetime.date(int(year), number, int(day)).isoformat()
    except ValueError:
        return None


def _month_number(name: str) -> int:
    names = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    return names.index(name[:3].casefold()) + 1


def is_date_line(line: str) -> bool:
    """A line that only dates the page: a date, and besides times, zones and "Updated"-like
    words at most a place name; never a sentence (no closing full stop)."""
    line = line.strip()
    if not line or len(line) > 160 or (line.endswith(".") and not line.endswith(("a.m.", "p.m."))):
        return False
    if parse_date(line) is None:
        return False
    rest = DATE_LINE_EXTRAS.sub(" ", DATE.sub(" ", line))
    return len(re.findall(r"[^\W\d_]+", rest)) <= PLACE_WORDS


def _is_title(block: list[str]) -> bool:
    return (
        len(block) == 1
        and len(block[0].split()) >= 2
        and len(block[0]) <= 200
        and not block[0].rstrip().endswith(".")
        and not is_date_line(block[0])
    )


HEADER_LINES = 12  # a page's date line stands among its first lines


def clean_page(text: str) -> tuple[str, dict[str, str | None]]:
    """A plain-text page copy -> (article text, {"title", "date"}): header rules 4-6 of the module
    doc, then :func:`clean_text`'s captions, boilerplate and footer."""
    lines = _lines(text)
    first = next((i for i, line in enumerate(lines) if line), None)
    title = None
    if first is not None:
        end = next((i for i in range(first, len(lines)) if not lines[i]), len(lines))
        if any(lines[end:]) and _is_title(lines[first:end]):
            title = lines[first].strip()
            lines = [line for line in lines[end:] if _key(line) != _key(title)]
    nonblank = [i for i, line in enumerate(lines) if line][:HEADER_LINES]
    dated = next((i for i in nonblank if is_date_line(lines[i])), None)
    date = None
    if dated is not None:
        date = parse_date(lines[dated])
        below = {_key(line) for line in lines[dated + 1 :] if line}
        header = [
            line
            for line in lines[:dated]
            if not line or (not BYLINE.fullmatch(line.strip()) and _key(line) not in below)
        ]
        lines = [*header, "", *lines[dated + 1 :]]
    return _paragraphs(_clean_lines(lines)), {"title": title, "date": date}
