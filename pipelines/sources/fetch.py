"""Stage ``fetch``: the public corpora, byte-exact at pinned commits, into ``data/raw/<corpus>/``.

Every file is checked against the sha256 in ``pipelines/sources/manifest.json`` (computed from the
shared mirror, whose files are byte-exact upstream copies), so a moved branch, a truncated
download or a corrupted mirror is an error instead of silently different data.

Where ``CLAIMTRACE_DATA_MIRROR`` names a folder laid out like the output (fnc1/, fnc1/anchors/,
polnear/data/..., emergent/, seeds/), files are copied from it; otherwise they are downloaded
(the ``seeds`` entry, the project's seed article, has no public upstream: it is read from the
mirror only, and fetching it without one is an error naming the variable): single
files from ``raw_base_url/<repo>/<commit>/<path>``, PolNeAR as one tarball from
``archive_base_url/<repo>/tar.gz/<commit>`` (its ``data/`` members only). The output is built in
a temporary sibling folder and renamed into place, so an interrupted run leaves no partial output.
"""

from __future__ import annotations

import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from tqdm import tqdm

from pipelines.core.io import atomic_dir, copy_hashed
from pipelines.core.params import ParamsError, load_section
from pipelines.core.stagelog import log, stage
from pipelines.sources.corpora import MIRROR_ENV

MANIFEST = Path(__file__).with_name("manifest.json")
NO_NETWORK_HINT = (
    f"No network? Set {MIRROR_ENV} to a folder laid out like /work/shared/data "
    "(fnc1/, fnc1/anchors/, polnear/data/, emergent/) to copy the corpora from there instead."
)


class FetchError(RuntimeError):
    """A file could not be fetched or does not match its committed sha256."""


@dataclass(frozen=True)
class FetchParams:
    corpora: tuple[str, ...]
    raw_base_url: str
    archive_base_url: str
    connect_timeout_s: float
    read_timeout_s: float

    def validate(self) -> None:
        unknown = sorted(set(self.corpora) - set(load_manifest()))
        if unknown or not self.corpora:
            raise ParamsError(
                f"fetch.corpora: unknown {unknown} (known: {sorted(load_manifest())})"
            )
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ParamsError("fetch: timeouts must be > 0")


def load_manifest(path: Path = MANIFEST) -> dict[str, dict[str, Any]]:
    """Corpus name -> {repo, commit, source (raw|archive), dest, files {rel: sha256}, upstream?}.

    ``rel`` is the path under ``data/raw/<dest>/``; ``upstream`` maps it to the repository path
    where the two differ (e.g. riedel_submission.csv is kept as uclmr_submission.csv).
    """
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _copy_verified(src: IO[bytes], dest: Path, expected: str, origin: str) -> int:
    """Copy a stream to ``dest`` while hashing it; raise naming the file if the hash differs."""
    digest, size = copy_hashed(src, dest)
    if digest != expected:
        raise FetchError(f"sha256 mismatch for {origin}: expected {expected}, got {digest}")
    return size


def _get(session: Any, url: str, params: FetchParams) -> Any:
    """One GET, no retries: an unreachable host fails within the connect timeout."""
    import requests

    try:
        resp = session.get(
            url, stream=True, timeout=(params.connect_timeout_s, params.read_timeout_s)
        )
    except (requests.ConnectionError, requests.Timeout) as e:
        raise FetchError(f"cannot download {url}: {e}. {NO_NETWORK_HINT}") from e
    if resp.status_code != 200:
        raise FetchError(f"cannot download {url}: HTTP {resp.status_code}")
    resp.raw.decode_content = True
    return resp


def _fetch_corpus(
    name: str, spec: dict[str, Any], tmp: Path, mirror: Path | None, params: FetchParams
) -> int:
    """Put one corpus's verified files under ``tmp/<dest>/``; return the bytes written."""
    files: dict[str, str] = spec["files"]
    dest = tmp / spec["dest"]
    total = 0
    if mirror is not None:
        for rel, sha in tqdm(files.items(), desc=name, unit="file", leave=False):
            src = mirror / spec["dest"] / rel
            if not src.is_file():
                raise FetchError(f"{src}: missing from the mirror ({MIRROR_ENV}={mirror})")
            with open(src, "rb") as f:
                total += _copy_verified(f, dest / rel, sha, str(src))
        return total

    import requests

    with requests.Session() as session:
        if spec["source"] == "raw":
            upstream = spec.get("upstream", {})
            for rel, sha in tqdm(files.items(), desc=name, unit="file", leave=False):
                url = f"{params.raw_base_url}/{spec['repo']}/{spec['commit']}/{upstream.get(rel, rel)}"
                with _get(session, url, params) as resp:
                    total += _copy_verified(resp.raw, dest / rel, sha, url)
            return total
        url = f"{params.archive_base_url}/{spec['repo']}/tar.gz/{spec['commit']}"
        todo = dict(files)
        with _get(session, url, params) as resp, tarfile.open(fileobj=resp.raw, mode="r|gz") as tar:
            for member in tqdm(tar, desc=name, unit="member", leave=False):
                rel = member.name.partition("/")[2]  # drop the "<repo>-<commit>/" prefix
                if member.isfile() and rel in todo:
                    # destination comes from the manifest, never from the archive's member name
                    src = tar.extractfile(member)
                    assert src is not None  # isfile() members always have data
                    total += _copy_verified(src, dest / rel, todo.pop(rel), f"{url}:{rel}")
        if todo:
            raise FetchError(
                f"{url}: {len(todo)} manifest files not in the archive, e.g. {sorted(todo)[:3]}"
            )
        return total


def fetch(
    out: Path,
    params: FetchParams,
    mirror: Path | None = None,
    manifest: dict[str, dict[str, Any]] | None = None,
) -> dict[str, int]:
    """Fetch ``params.corpora`` into ``out`` (replaced whole); return file and byte counts."""
    manifest = load_manifest() if manifest is None else manifest
    mirror_only = [name for name in params.corpora if manifest[name]["source"] == "mirror"]
    if mirror_only and mirror is None:
        raise FetchError(
            f"fetch.corpora {mirror_only} are only in the data mirror (never downloaded): "
            f"set {MIRROR_ENV} to the mirror folder (laid out like ../shared/data), "
            f"or drop them from fetch.corpora in params.yaml"
        )
    counts = {"files": 0, "bytes": 0}
    with atomic_dir(out) as tmp:
        for name in params.corpora:
            counts["bytes"] += _fetch_corpus(name, manifest[name], tmp, mirror, params)
            counts["files"] += len(manifest[name]["files"])
    return counts


def mirror_from_env() -> Path | None:
    value = os.environ.get(MIRROR_ENV)
    if not value:
        return None
    mirror = Path(value)
    if not mirror.is_dir():
        raise FetchError(f"{MIRROR_ENV}={value} is not a directory")
    return mirror


def command(
    out: Annotated[Path, typer.Argument(help="Output folder, e.g. data/raw (replaced whole).")],
    params: Annotated[Path, typer.Option(help="Parameters file (section 'fetch').")] = Path(
        "params.yaml"
    ),
) -> None:
    """Download (or copy from $CLAIMTRACE_DATA_MIRROR) the public corpora and verify their sha256."""
    p = load_section(FetchParams, "fetch", params)
    with stage("fetch", fail_on=(FetchError,)) as counts:
        mirror = mirror_from_env()
        log.info("fetch %s from %s", ", ".join(p.corpora), mirror or "upstream (GitHub)")
        counts.update(fetch(out, p, mirror))


if __name__ == "__main__":
    typer.run(command)
