"""FAKE Hugging Face Hub for tests: a local HTTP server speaking the subset of the Hub API that
``huggingface_hub`` 2.x calls to create a repo, upload a folder and download it back.

This is a TEST DOUBLE, not the Hub. The real Hub cannot be reached from the test machines, so
``tests/test_publish.py`` points ``HF_ENDPOINT`` at this server and drives the real
``huggingface_hub`` client (with ``HF_HUB_DISABLE_XET=1``, i.e. the plain HTTP + LFS protocol)
and the real ``transformers`` loader against it. Routes were written from the client's source
(``hf_api.py``, ``_commit_api.py``, ``lfs.py``, ``file_download.py``, ``_snapshot_download.py``):

- ``GET  /api/whoami-v2``
- ``POST /api/repos/create``                               (409 if it exists)
- ``POST /api/validate-yaml``                              (README front matter must be YAML)
- ``GET  /api/{type}s/{ns}/{name}[/revision/{rev}]``       (repo info with ``sha`` + ``siblings``)
- ``POST /api/{type}s/{ns}/{name}/preupload/{rev}``        (regular vs LFS upload mode)
- ``POST /[datasets/]{ns}/{name}.git/info/lfs/objects/batch`` (basic transfer only)
- ``PUT  /_fake_lfs/{sha256}?sig=...``                     (the "presigned" upload URL it hands out)
- ``POST /api/{type}s/{ns}/{name}/commit/{rev}``           (NDJSON: file, lfsFile, deletedFile/Folder)
- ``GET  /api/{type}s/{ns}/{name}/tree/{rev}[/{path}]``    (no pagination)
- ``HEAD|GET /[datasets/]{ns}/{name}/resolve/{rev}/{path}`` (X-Repo-Commit, ETag, Content-Length)

Auth: a request carrying a wrong bearer token gets 401 "Invalid credentials in Authorization
header" (as on the Hub); writes need the right token; anonymous reads work on public repos only.
Not covered (the Hub does these, this fake does not): Xet storage, LFS multipart and verify,
branches/tags/PRs (only ``main`` and commit hashes), token scopes and fine-grained permissions,
organisations, gated repos, rate limits, pagination, redirects to a CDN, ``.gitattributes``
handling, server-side metadata validation beyond "the YAML parses", safetensors/pickle scanning.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

USER = "claimtrace-tester"
# Binary weights and data go through LFS, as the Hub's default .gitattributes would send them.
LFS_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".pkl",
    ".parquet",
    ".arrow",
    ".h5",
    ".onnx",
    ".zip",
)
LFS_MIN_SIZE = 10 * 1024 * 1024
TYPES = {"models": "model", "datasets": "dataset"}


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class StoredFile:
    size: int
    sha256: str
    git_oid: str
    lfs: bool


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    head: str
    files: dict[str, StoredFile] = field(default_factory=dict)
    snapshots: dict[str, dict[str, StoredFile]] = field(default_factory=dict)


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class FakeHub:
    """Repo state plus blob storage (content-addressed by sha256 under ``root``)."""

    def __init__(self, root: Path, token: str):
        self.root = root
        self.token = token
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        (root / "blobs").mkdir(parents=True, exist_ok=True)

    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256

    def store_blob(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        self.blob_path(sha).write_bytes(data)
        return sha

    def repo(self, repo_type: str, repo_id: str, authed: bool) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not authed):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def snapshot(self, repo: Repo, revision: str) -> tuple[str, dict[str, StoredFile]]:
        revision = unquote(revision)
        if revision == "main":
            return repo.head, repo.files
        if revision in repo.snapshots:
            return revision, repo.snapshots[revision]
        raise HubError(
            404,
            f"Invalid rev id: {revision} (this fake Hub knows only 'main' and commit hashes)",
            "RevisionNotFound",
        )


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: FakeHub  # set on the subclass made by ``serve``

    def log_message(self, format: str, *args: Any) -> None:
        return

    # --- plumbing ------------------------------------------------------------------------------

    @property
    def base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(
        self,
        status: int,
        payload: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        head: bool = False,
    ) -> None:
        data = (
            raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        )
        self.send_response(status)
        self.send_header(
            "Content-Type", "application/octet-stream" if raw is not None else "application/json"
        )
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def authed(self) -> bool:
        """True with the right token, False anonymous; a wrong token is refused outright (401)."""
        header = self.headers.get("Authorization")
        if header is None:
            return False
        if header != f"Bearer {self.hub.token}":
            raise HubError(401, "Invalid credentials in Authorization header")
        return True

    def require_auth(self) -> None:
        if not self.authed():
            raise HubError(401, "You must be authenticated to access this resource")

    def dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.hub.requests.append((method, url.path))
        try:
            with self.hub.lock:
                self.route(method, parts, query)
        except HubError as e:
            headers = {"X-Error-Message": e.message}
            if e.code:
                headers["X-Error-Code"] = e.code
            self.send(e.status, {"error": e.message}, headers, head=method == "HEAD")

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_HEAD(self) -> None:
        self.dispatch("HEAD")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    # --- routes --------------------------------------------------------------------------------

    def route(self, method: str, parts: list[str], query: dict[str, str]) -> None:
        if method == "PUT" and parts[0] == "_fake_lfs":
            return self.lfs_put(parts[1], query)
        if parts[0] == "api":
            if parts[1:] == ["whoami-v2"] and method == "GET":
                self.require_auth()
                return self.send(
                    200,
                    {
                        "type": "user",
                        "name": USER,
                        "fullname": "claimtrace tester",
                        "orgs": [],
                        "auth": {"type": "access_token", "accessToken": {"role": "write"}},
                    },
                )
            if parts[1:] == ["repos", "create"] and method == "POST":
                return self.create_repo()
            if parts[1:] == ["validate-yaml"] and method == "POST":
                return self.validate_yaml()
            if len(parts) >= 4 and parts[1] in TYPES:
                repo_type, repo_id, rest = TYPES[parts[1]], f"{parts[2]}/{parts[3]}", parts[4:]
                if not rest and method == "GET":
                    return self.repo_info(repo_type, repo_id, "main")
                if rest[0] == "revision" and method == "GET":
                    return self.repo_info(repo_type, repo_id, "/".join(rest[1:]))
                if rest[0] == "tree" and method == "GET":
                    recursive = query.get("recursive", "false").lower() == "true"
                    return self.tree(repo_type, repo_id, rest[1], "/".join(rest[2:]), recursive)
                if rest[0] == "preupload" and method == "POST":
                    return self.preupload(repo_type, repo_id, "/".join(rest[1:]))
                if rest[0] == "commit" and method == "POST":
                    return self.commit(repo_type, repo_id, "/".join(rest[1:]), query)
        repo_type = "model"
        if parts[0] == "datasets":
            repo_type, parts = "dataset", parts[1:]
        if (
            len(parts) >= 2
            and parts[1].endswith(".git")
            and parts[2:] == ["info", "lfs", "objects", "batch"]
        ):
            return self.lfs_batch(repo_type, f"{parts[0]}/{parts[1][:-4]}")
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            return self.resolve(
                repo_type, f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), method
            )
        raise HubError(404, f"fake Hub: no route for {method} /{'/'.join(parts)}")

    def create_repo(self) -> None:
        self.require_auth()
        payload = json.loads(self.body())
        namespace = payload.get("organization") or USER
        if namespace != USER:
            raise HubError(
                403, f"You don't have the rights to create a repo under the namespace {namespace!r}"
            )
        repo_type = payload.get("type") or "model"
        if repo_type not in TYPES.values():
            raise HubError(400, f"fake Hub: repo type {repo_type!r} not supported")
        repo_id = f"{namespace}/{payload['name']}"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self.base}/{prefix}{repo_id}"
        if (repo_type, repo_id) in self.hub.repos:
            return self.send(409, {"error": "You already created this repo", "url": url})
        head = hashlib.sha1(f"init {repo_type} {repo_id} {time.time_ns()}".encode()).hexdigest()
        repo = Repo(
            repo_type,
            repo_id,
            payload.get("visibility") == "private" or bool(payload.get("private")),
            head,
        )
        repo.snapshots[head] = {}
        self.hub.repos[(repo_type, repo_id)] = repo
        self.send(200, {"url": url, "name": repo_id, "id": repo_id})

    def validate_yaml(self) -> None:
        self.authed()
        content = json.loads(self.body())["content"]
        if content.startswith("---"):
            try:
                meta = yaml.safe_load(content.split("---", 2)[1])
            except yaml.YAMLError as e:
                return self.send(400, {"errors": [{"message": f"YAML: {e}"}], "warnings": []})
            if meta is not None and not isinstance(meta, dict):
                return self.send(
                    400, {"errors": [{"message": "metadata must be a mapping"}], "warnings": []}
                )
        self.send(200, {"errors": [], "warnings": []})

    def repo_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        repo = self.hub.repo(repo_type, repo_id, self.authed())
        sha, files = self.hub.snapshot(repo, revision)
        self.send(
            200,
            {
                "id": repo_id,
                "author": repo_id.split("/")[0],
                "sha": sha,
                "private": repo.private,
                "siblings": [{"rfilename": p} for p in sorted(files)],
                "tags": [],
                "gated": False,
                "disabled": False,
            },
        )

    def tree(self, repo_type: str, repo_id: str, revision: str, path: str, recursive: bool) -> None:
        repo = self.hub.repo(repo_type, repo_id, self.authed())
        _, files = self.hub.snapshot(repo, revision)
        prefix = f"{path.rstrip('/')}/" if path else ""
        entries: dict[str, dict[str, Any]] = {}
        for name, f in sorted(files.items()):
            if not name.startswith(prefix):
                continue
            rel = name[len(prefix) :]
            folders = rel.split("/")[:-1]
            for i in range(len(folders)):
                folder = prefix + "/".join(folders[: i + 1])
                entries.setdefault(
                    folder, {"type": "directory", "path": folder, "oid": "0" * 40, "size": 0}
                )
            entry: dict[str, Any] = {"type": "file", "path": name, "size": f.size, "oid": f.git_oid}
            if f.lfs:
                entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": 134}
            entries[name] = entry
        depth = prefix.count("/")
        self.send(200, [e for p, e in entries.items() if recursive or p.count("/") == depth])

    def preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        self.require_auth()
        repo = self.hub.repo(repo_type, repo_id, True)
        _, files = self.hub.snapshot(repo, revision)
        out = []
        for f in json.loads(self.body())["files"]:
            sample = base64.b64decode(f["sample"])
            lfs = f["path"].endswith(LFS_SUFFIXES) or f["size"] >= LFS_MIN_SIZE or b"\0" in sample
            existing = files.get(f["path"])
            out.append(
                {
                    "path": f["path"],
                    "uploadMode": "lfs" if lfs else "regular",
                    "shouldIgnore": False,
                    "oid": existing.git_oid if existing else None,
                }
            )
        self.send(200, {"files": out, "commitOid": repo.head})

    def lfs_batch(self, repo_type: str, repo_id: str) -> None:
        self.require_auth()
        self.hub.repo(repo_type, repo_id, True)
        payload = json.loads(self.body())
        if payload.get("operation") != "upload":
            raise HubError(400, "fake Hub: only LFS uploads are supported")
        objects = []
        for obj in payload["objects"]:
            entry: dict[str, Any] = {"oid": obj["oid"], "size": obj["size"]}
            if not self.hub.blob_path(obj["oid"]).exists():
                # The real Hub hands out a presigned S3 URL: no Authorization header is sent to it.
                href = f"{self.base}/_fake_lfs/{obj['oid']}?sig={secrets.token_hex(8)}&size={obj['size']}"
                entry["actions"] = {"upload": {"href": href}}
            objects.append(entry)
        self.send(200, {"transfer": "basic", "objects": objects})

    def lfs_put(self, oid: str, query: dict[str, str]) -> None:
        if "sig" not in query:
            raise HubError(403, "fake Hub: unsigned upload URL")
        data = self.body()
        if hashlib.sha256(data).hexdigest() != oid or len(data) != int(query["size"]):
            raise HubError(400, "fake Hub: uploaded content does not match its sha256/size")
        self.hub.store_blob(data)
        self.send(200, raw=b"")

    def commit(self, repo_type: str, repo_id: str, revision: str, query: dict[str, str]) -> None:
        self.require_auth()
        repo = self.hub.repo(repo_type, repo_id, True)
        if unquote(revision) != "main" or query.get("create_pr"):
            raise HubError(
                400, "fake Hub: commits go to 'main' only (no branches, no pull requests)"
            )
        lines = [json.loads(line) for line in self.body().decode().splitlines() if line.strip()]
        header = lines[0]["value"] if lines and lines[0]["key"] == "header" else {}
        parent = header.get("parentCommit")
        if parent and not repo.head.startswith(parent):
            raise HubError(412, f"parent commit {parent} is not the head of main")
        files = dict(repo.files)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                data = base64.b64decode(value["content"])
                files[value["path"]] = StoredFile(
                    len(data), self.hub.store_blob(data), git_blob_oid(data), False
                )
            elif key == "lfsFile":
                blob = self.hub.blob_path(value["oid"])
                if not blob.exists():
                    raise HubError(
                        422, f"LFS object {value['oid']} for {value['path']!r} was never uploaded"
                    )
                size = blob.stat().st_size
                pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{value['oid']}\nsize {size}\n"
                files[value["path"]] = StoredFile(
                    size, value["oid"], git_blob_oid(pointer.encode()), True
                )
            elif key == "deletedFile":
                if value["path"] not in files:
                    raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                del files[value["path"]]
            elif key == "deletedFolder":
                files = {
                    p: f
                    for p, f in files.items()
                    if not p.startswith(value["path"].rstrip("/") + "/")
                }
            else:
                raise HubError(400, f"fake Hub: commit operation {key!r} not supported")
        oid = hashlib.sha1(
            json.dumps([repo.head, header, lines[1:]], sort_keys=True).encode()
        ).hexdigest()
        repo.head, repo.files = oid, files
        repo.snapshots[oid] = files
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        self.send(
            200,
            {
                "success": True,
                "commitOid": oid,
                "commitUrl": f"{self.base}/{prefix}{repo_id}/commit/{oid}",
                "pullRequestUrl": None,
            },
        )

    def resolve(self, repo_type: str, repo_id: str, revision: str, path: str, method: str) -> None:
        repo = self.hub.repo(repo_type, repo_id, self.authed())
        sha, files = self.hub.snapshot(repo, revision)
        f = files.get(path)
        if f is None:
            raise HubError(404, "Entry not found", "EntryNotFound")
        etag = f.sha256 if f.lfs else f.git_oid
        headers = {"X-Repo-Commit": sha, "ETag": f'"{etag}"'}
        if f.lfs:
            headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(f.size)})
        self.send(
            200,
            headers=headers,
            raw=self.hub.blob_path(f.sha256).read_bytes(),
            head=method == "HEAD",
        )


class HubServer:
    """A running fake Hub: ``endpoint`` for HF_ENDPOINT, ``hub`` to inspect what was stored."""

    def __init__(self, token: str, root: Path | None = None):
        self._tmp = None if root is not None else tempfile.TemporaryDirectory(prefix="fake-hub-")
        self.hub = FakeHub(Path(root or self._tmp.name), token)  # type: ignore[union-attr]
        handler = type("BoundHandler", (Handler,), {"hub": self.hub})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="fake-hub", daemon=True
        )

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
        if self._tmp is not None:
            self._tmp.cleanup()
