"""fetch: mirror copy, download from a real local HTTP server, hash checks, offline failure."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest
import yaml

from pipelines.core.params import ParamsError, load_section
from pipelines.sources.fetch import (
    MIRROR_ENV,
    FetchError,
    FetchParams,
    fetch,
    load_manifest,
    mirror_from_env,
)

ROOT = Path(__file__).resolve().parents[1]
CLOSED = "http://127.0.0.1:9"  # discard port: nothing listens, so connecting is refused at once


def params(corpora: tuple[str, ...], base: str = CLOSED) -> FetchParams:
    return FetchParams(
        corpora, raw_base_url=base, archive_base_url=base, connect_timeout_s=2, read_timeout_s=5
    )


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def small_manifest() -> dict:
    """Two tiny corpora: one of single files (one renamed upstream), one from an archive."""
    return {
        "one": {
            "repo": "o/one",
            "commit": "c1",
            "source": "raw",
            "dest": "one",
            "upstream": {"b.csv": "deep/b_upstream.csv"},
            "files": {"a.csv": sha(b"a,1\n"), "b.csv": sha(b"b,2\n")},
        },
        "two": {
            "repo": "o/two",
            "commit": "c2",
            "source": "archive",
            "dest": "one/two",
            "files": {"data/x/t.txt": sha(b"text\n"), "data/m.tsv": sha(b"k\tv\n")},
        },
    }


def write_small_mirror(root: Path) -> Path:
    for rel, data in {
        "one/a.csv": b"a,1\n",
        "one/b.csv": b"b,2\n",
        "one/two/data/x/t.txt": b"text\n",
        "one/two/data/m.tsv": b"k\tv\n",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_small_mirror_copy(tmp_path: Path) -> None:
    mirror = write_small_mirror(tmp_path / "mirror")
    counts = fetch(tmp_path / "raw", params(("one", "two")), mirror, small_manifest())
    assert counts == {"files": 4, "bytes": 17}
    assert (tmp_path / "raw/one/two/data/x/t.txt").read_bytes() == b"text\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mirror", "raw"]  # no temp folder left


def test_corrupted_file_is_named_and_old_output_kept(tmp_path: Path) -> None:
    mirror = write_small_mirror(tmp_path / "mirror")
    (mirror / "one/b.csv").write_bytes(b"b,3\n")
    out = tmp_path / "raw"
    (out / "old").mkdir(parents=True)
    with pytest.raises(FetchError) as err:
        fetch(out, params(("one",)), mirror, small_manifest())
    msg = str(err.value)
    assert "one/b.csv" in msg and sha(b"b,2\n") in msg and sha(b"b,3\n") in msg
    assert [p.name for p in out.iterdir()] == ["old"]  # the previous output is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mirror", "raw"]


def test_missing_mirror_file_is_named(tmp_path: Path) -> None:
    mirror = write_small_mirror(tmp_path / "mirror")
    (mirror / "one/a.csv").unlink()
    with pytest.raises(FetchError, match=r"one/a\.csv: missing from the mirror"):
        fetch(tmp_path / "raw", params(("one",)), mirror, small_manifest())


def test_real_mirror_matches_committed_manifest(tmp_path: Path, mirror: Path) -> None:
    """Every committed sha256 is right: fetch all corpora from the shared mirror."""
    manifest = load_manifest()
    counts = fetch(tmp_path / "raw", params(tuple(manifest)), mirror)
    assert counts["files"] == sum(len(m["files"]) for m in manifest.values()) > 2000
    assert (tmp_path / "raw/fnc1/anchors/uclmr_submission.csv").is_file()
    assert (tmp_path / "raw/polnear/data/metadata.tsv").is_file()
    assert (tmp_path / "raw/emergent/url-versions-2015-06-14-clean-test.csv").is_file()


@pytest.fixture
def http_root(tmp_path: Path):
    """A real HTTP server laid out like raw.githubusercontent.com and codeload.github.com."""
    root = tmp_path / "www"
    for rel, data in {"o/one/c1/a.csv": b"a,1\n", "o/one/c1/deep/b_upstream.csv": b"b,2\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for rel, data in {
            "two-c2/README": b"r",
            "two-c2/data/x/t.txt": b"text\n",
            "two-c2/data/m.tsv": b"k\tv\n",
        }.items():
            info = tarfile.TarInfo(rel)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (root / "o/two/tar.gz").mkdir(parents=True)
    (root / "o/two/tar.gz/c2").write_bytes(buf.getvalue())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_download_raw_and_archive(tmp_path: Path, http_root) -> None:
    base, _ = http_root
    counts = fetch(tmp_path / "raw", params(("one", "two"), base), None, small_manifest())
    assert counts == {"files": 4, "bytes": 17}
    assert (tmp_path / "raw/one/b.csv").read_bytes() == b"b,2\n"
    assert (tmp_path / "raw/one/two/data/m.tsv").read_bytes() == b"k\tv\n"
    assert not (tmp_path / "raw/one/two/README").exists()  # only manifest files are extracted


def test_download_corrupted_and_missing(tmp_path: Path, http_root) -> None:
    base, root = http_root
    (root / "o/one/c1/a.csv").write_bytes(b"evil\n")
    with pytest.raises(FetchError, match=r"sha256 mismatch for .*/o/one/c1/a\.csv: expected"):
        fetch(tmp_path / "raw", params(("one",), base), None, small_manifest())
    (root / "o/one/c1/a.csv").unlink()
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch(tmp_path / "raw", params(("one",), base), None, small_manifest())
    assert not (tmp_path / "raw").exists()


def fetch_cli_offline(tmp_path: Path, corpora: list[str]) -> subprocess.CompletedProcess[str]:
    """The real CLI, with downloads pointed at a closed local port and no mirror set."""
    section = {
        "corpora": corpora,
        "raw_base_url": CLOSED,
        "archive_base_url": CLOSED,
        "connect_timeout_s": 3,
        "read_timeout_s": 5,
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"fetch": section}))
    env = {k: v for k, v in os.environ.items() if k != MIRROR_ENV} | {"PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.sources.fetch", "raw", "--params", "params.yaml"],
        capture_output=True, text=True, env=env, cwd=tmp_path,
        timeout=600,  # only against a hang: a refused connection ends the run at once
    )  # fmt: skip


def test_offline_without_mirror_fails_fast_with_hint(tmp_path: Path) -> None:
    proc = fetch_cli_offline(tmp_path, ["fnc1"])
    assert proc.returncode == 1
    assert MIRROR_ENV in proc.stderr and "train_bodies.csv" in proc.stderr
    assert not (tmp_path / "raw").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["params.yaml"]


def test_unknown_corpus_is_a_params_error(tmp_path: Path) -> None:
    section = yaml.safe_load((ROOT / "params.yaml").read_text())["fetch"] | {"corpora": ["fnc2"]}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"fetch": section}))
    with pytest.raises(ParamsError, match="fnc2"):
        load_section(FetchParams, "fetch", tmp_path / "params.yaml")


def test_mirror_env_must_name_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "absent"))
    with pytest.raises(FetchError, match="is not a directory"):
        mirror_from_env()
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    assert mirror_from_env() == tmp_path


def test_seed_without_mirror_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    """The seed article is never downloaded (it belongs to its publisher): no mirror, one line."""
    proc = fetch_cli_offline(tmp_path, ["emergent", "seeds"])
    assert proc.returncode == 1
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("ERROR")]
    assert MIRROR_ENV in line and "['seeds']" in line and "Traceback" not in proc.stderr
    assert not (tmp_path / "raw").exists()


def test_seed_is_copied_from_the_mirror_and_checked(tmp_path: Path, mirror: Path) -> None:
    manifest = load_manifest()
    counts = fetch(tmp_path / "raw", params(("seeds",)), mirror, manifest)
    assert counts["files"] == 1
    (name,) = manifest["seeds"]["files"]
    assert (tmp_path / "raw/seeds" / name).read_bytes() == (mirror / "seeds" / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "raw/seeds").iterdir()) == [name]  # no PROVENANCE
