"""Stage ``ingest``: news articles as given (.txt, .html/.htm, .jsonl) -> ``data/corpus/articles.jsonl``.

Files are read recursively from ``ingest.inputs`` in sorted order (so ids and order are stable);
other files (README.md) are ignored. HTML goes through trafilatura (main text plus title, date,
url, site name); JSONL lines are ``{"text", "title"?, "publisher"?, "date"?, "url"?}``. Every
text is cleaned of page furniture (:mod:`pipelines.sources.cleaning`) and de-duplicated by content id,
keeping the first file's metadata. A bad file or line is skipped with a warning naming it, and
the run goes on: one broken input never costs the others.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from pipelines.core.document import Article, write_articles
from pipelines.core.params import ParamsError, load_section
from pipelines.core.stagelog import log, stage
from pipelines.sources.cleaning import clean_text

SUFFIXES = (".txt", ".html", ".htm", ".jsonl")
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


def input_files(inputs: tuple[str, ...]) -> list[Path]:
    """Article files under ``inputs`` (folders, searched recursively, or single files), sorted."""
    files: list[Path] = []
    for name in inputs:
        root = Path(name)
        if root.is_file():
            files.append(root)
        elif root.is_dir():
            files += sorted(
                p
                for p in root.rglob("*")
                if p.is_file()
                and p.suffix.lower() in SUFFIXES
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


def read_jsonl_lines(path: Path, content: str) -> Iterator[tuple[str, tuple[str, Meta] | Skip]]:
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
        if bad:
            yield where, Skip(f"fields {bad} must be strings or null")
            continue
        unknown = sorted(set(rec) - {"text", *META_FIELDS})
        if unknown:
            log.warning("%s: ignored unknown fields %s", where, unknown)
        try:
            yield where, _checked(rec["text"], {k: rec.get(k) for k in META_FIELDS})
        except Skip as e:
            yield where, e


def read_path(path: Path) -> Iterator[tuple[str, tuple[str, Meta] | Skip]]:
    """(where, (text, metadata) or why it is skipped) for each article in one file."""
    try:
        content = decode(path.read_bytes())
    except OSError as e:
        raise Skip(f"cannot read the file ({e.strerror})") from None
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from read_jsonl_lines(path, content)
    elif suffix in (".html", ".htm"):
        yield str(path), _checked(*read_html(content))
    else:
        yield str(path), (content, dict.fromkeys(META_FIELDS))


def ingest(inputs: tuple[str, ...], min_chars: int) -> IngestResult:
    """Read, clean and de-duplicate every article under ``inputs``; bad inputs become warnings."""
    result, seen = IngestResult(), set()
    counts = result.counts

    def skip(where: str, reason: str) -> None:
        result.warnings.append(f"{where}: skipped: {reason}")
        log.warning("%s", result.warnings[-1])
        counts["skipped"] += 1

    for path in tqdm(input_files(inputs), desc="ingest", unit="file", leave=False):
        counts["files"] += 1
        try:
            for where, item in read_path(path):
                counts["read"] += 1
                if isinstance(item, Skip):
                    skip(where, str(item))
                    continue
                text = clean_text(item[0])
                if len(text) < min_chars:
                    short = f"{len(text)} characters after cleaning, fewer than ingest.min_chars={min_chars}"
                    html = path.suffix.lower() in (".html", ".htm")
                    skip(
                        where,
                        f"no article text found in the HTML page ({short})" if html else short,
                    )
                    continue
                article = Article.from_text(text, **item[1])
                if article.id in seen:
                    log.info(
                        "%s: duplicate of an earlier article (%s); the first is kept",
                        where,
                        article.id,
                    )
                    counts["duplicates"] += 1
                    continue
                seen.add(article.id)
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
