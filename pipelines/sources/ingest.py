"""Stage ``ingest``: news articles as given (.txt, .html/.htm, .jsonl) -> ``data/corpus/articles.jsonl``.

Files are read recursively from ``ingest.inputs`` in sorted order (so the order is stable);
other files (README.md) and notes (README, PROVENANCE, LICENSE .txt files) are ignored. A .txt file is a plain-text copy of a web page: its title
and date line become fields (:func:`pipelines.sources.cleaning.clean_page`). HTML goes through
trafilatura (main text plus title, date, url, site name); JSONL lines are ``{"text", "id"?,
"title"?, "publisher"?, "date"?, "url"?}``. Every text is cleaned of page furniture
(:mod:`pipelines.sources.cleaning`).

An article's id is its identity, from where it came from: a given JSONL ``id``, else its URL,
else its file's path under the input folder (plus the line for a JSONL line), so an edited
article keeps its id (its text hash is its version, :attr:`Article.version`). The same text
twice is kept once (the first file's metadata); the same identity with two different texts
keeps the first and warns. A bad file or line is skipped with a warning naming it, and the run
goes on: one broken input never costs the others.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from pipelines.core.document import Article, article_id, write_articles
from pipelines.core.params import ParamsError, load_section
from pipelines.core.stagelog import log, stage
from pipelines.sources.cleaning import clean_page, clean_text

SUFFIXES = (".txt", ".html", ".htm", ".jsonl")
# notes that travel beside articles (the mirror's seeds/PROVENANCE.txt): never an article
NOTE_STEMS = ("README", "PROVENANCE", "LICENSE", "LICENCE", "NOTICE")
META_FIELDS = ("title", "publisher", "date", "url")
Meta = dict[str, str | None]


class Skip(ValueError):
    """Why one input (a file or a JSONL line) is skipped; the run goes on."""


@dataclass(frozen=True)
class IngestParams:
    inputs: tuple[str, ...]
    min_chars: int

    def validate(self) -> None:
        if not self.inputs or self.min_chars < 1:
            raise ParamsError(
                "ingest: inputs must list at least one folder and min_chars must be >= 1"
            )


@dataclass
class IngestResult:
    articles: list[Article] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: {"files": 0, "read": 0, "kept": 0, "duplicates": 0, "skipped": 0}
    )
    warnings: list[str] = field(default_factory=list)


def input_files(inputs: tuple[str, ...]) -> list[tuple[Path, str]]:
    """(file, its path under its input folder) for the article files under ``inputs`` (folders,
    searched recursively, or single files, whose path is their name), sorted."""
    files: list[tuple[Path, str]] = []
    for name in inputs:
        root = Path(name)
        if root.is_file():
            files.append((root, root.name))
        elif root.is_dir():
            files += sorted(
                (p, p.relative_to(root).as_posix())
                for p in root.rglob("*")
                if p.is_file()
                and p.suffix.lower() in SUFFIXES
                and p.stem.upper() not in NOTE_STEMS
                and not any(part.startswith(".") for part in p.relative_to(root).parts)
            )
        else:
            raise FileNotFoundError(
                f"ingest input {name!r} does not exist (see ingest.inputs in params.yaml)"
            )
    return files


def decode(data: bytes) -> str:
    if not data.strip():
        raise Skip("empty file")
    if b"\x00" in data:
        raise Skip("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise Skip(
            f"not UTF-8 text (undecodable byte at offset {e.start}); re-save it as UTF-8"
        ) from None


def _checked(text: str, meta: Meta) -> tuple[str, Meta]:
    """Blank metadata becomes None; a lone surrogate (possible via JSON escapes) is an error."""
    meta = {k: (v.strip() or None) if isinstance(v, str) else None for k, v in meta.items()}
    for value in (text, *meta.values()):
        if value is not None:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise Skip("contains an invalid code point (lone surrogate)") from None
    return text, meta


def read_html(page: str) -> tuple[str, Meta]:
    """Main text (one paragraph per block, blank-line separated) and metadata of an HTML page."""
    import trafilatura

    # precision over recall: a page without an article (an index, an error page) yields nothing
    # instead of its navigation text
    doc = trafilatura.bare_extraction(
        page, favor_precision=True, include_comments=False, include_tables=False, with_metadata=True
    )
    text = (
        "\n\n".join(line.strip() for line in (doc.text or "").split("\n") if line.strip())
        if doc
        else ""
    )
    if not text:
        raise Skip("no article text found in the HTML page")
    return text, {"title": doc.title, "publisher": doc.sitename, "date": doc.date, "url": doc.url}


def origin(rel: str, meta: Meta, given_id: object = None) -> str:
    """Where an article came from, its identity: a given id, else its URL, else its file."""
    if given_id is not None:
        return f"id:{given_id}"
    return f"url:{meta['url']}" if meta.get("url") else f"file:{rel}"


Item = tuple[str, str, str, Meta] | Skip  # (origin, text, metadata) or why it is skipped


def read_jsonl_lines(path: Path, rel: str, content: str) -> Iterator[tuple[str, Item]]:
    for lineno, line in enumerate(content.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError) as e:
            yield where, Skip(f"not valid JSON ({getattr(e, 'msg', e)})")
            continue
        if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
            yield where, Skip('not a JSON object with a string "text"')
            continue
        bad = [k for k in META_FIELDS if not isinstance(rec.get(k), str | None)]
        given = rec.get("id")
        if isinstance(given, bool) or not isinstance(given, str | int | None) or given == "":
            bad.append("id")
        if bad:
            yield where, Skip(f"fields {bad} must be strings or null (an id: a string or number)")
            continue
        unknown = sorted(set(rec) - {"text", "id", *META_FIELDS})
        if unknown:
            log.warning("%s: ignored unknown fields %s", where, unknown)
        try:
            text, meta = _checked(rec["text"], {k: rec.get(k) for k in META_FIELDS})
            if isinstance(given, str):
                _checked(given, {})
        except Skip as e:
            yield where, e
            continue
        yield where, (origin(f"{rel}#{lineno}", meta, given), clean_text(text), meta)


def read_path(path: Path, rel: str) -> Iterator[tuple[str, Item]]:
    """(where, (origin, text, metadata) or why it is skipped) for each article in one file;
    ``rel`` is the file's path under its input folder."""
    try:
        content = decode(path.read_bytes())
    except OSError as e:
        raise Skip(f"cannot read the file ({e.strerror})") from None
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from read_jsonl_lines(path, rel, content)
    elif suffix in (".html", ".htm"):
        text, meta = _checked(*read_html(content))
        yield str(path), (origin(rel, meta), clean_text(text), meta)
    else:
        text, header = clean_page(content)
        meta = dict.fromkeys(META_FIELDS) | header
        yield str(path), (origin(rel, meta), text, meta)


def ingest(inputs: tuple[str, ...], min_chars: int) -> IngestResult:
    """Read, clean and de-duplicate every article under ``inputs``; bad inputs become warnings."""
    result = IngestResult()
    counts = result.counts
    texts: dict[str, str] = {}  # content key -> where it was first read
    ids: dict[str, str] = {}  # article id -> where it was first read

    def skip(where: str, reason: str) -> None:
        result.warnings.append(f"{where}: skipped: {reason}")
        log.warning("%s", result.warnings[-1])
        counts["skipped"] += 1

    for path, rel in tqdm(input_files(inputs), desc="ingest", unit="file", leave=False):
        counts["files"] += 1
        try:
            for where, item in read_path(path, rel):
                counts["read"] += 1
                if isinstance(item, Skip):
                    skip(where, str(item))
                    continue
                source, text, meta = item
                if len(text) < min_chars:
                    short = f"{len(text)} characters after cleaning, fewer than ingest.min_chars={min_chars}"
                    html = path.suffix.lower() in (".html", ".htm")
                    skip(
                        where,
                        f"no article text found in the HTML page ({short})" if html else short,
                    )
                    continue
                article = Article.from_origin(source, text, **meta)
                key = article_id(text)
                if key in texts:
                    log.info("%s: same text as %s; the first is kept", where, texts[key])
                    counts["duplicates"] += 1
                elif article.id in ids:
                    skip(
                        where,
                        f"same identity ({source}) as {ids[article.id]} but another text; "
                        "give one of them its own id or file name",
                    )
                else:
                    texts[key] = ids[article.id] = where
                    result.articles.append(article)
        except Skip as e:
            counts["read"] += 1
            skip(str(path), str(e))
    counts["kept"] = len(result.articles)
    return result


def run(output: Path, params: IngestParams) -> IngestResult:
    with stage("ingest") as counts:
        result = ingest(params.inputs, params.min_chars)
        write_articles(output, result.articles)
        counts.update(result.counts)
    if not result.articles:
        log.warning("no article kept from %s: %s is empty", list(params.inputs), output)
    return result


def command(
    output: Annotated[
        Path, typer.Argument(help="Output JSONL of articles, e.g. data/corpus/articles.jsonl.")
    ],
    params: Annotated[Path, typer.Option(help="Parameters file (section 'ingest').")] = Path(
        "params.yaml"
    ),
) -> None:
    """Read news articles (.txt, .html, .jsonl) from ingest.inputs, clean and de-duplicate them."""
    run(output, load_section(IngestParams, "ingest", params))


if __name__ == "__main__":
    typer.run(command)
