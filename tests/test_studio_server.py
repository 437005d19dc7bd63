"""Push / pull against a REAL Label Studio server (started by the ``studio`` fixture)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from pipelines.core.document import (
    AnnotationSet,
    Article,
    Relation,
    Span,
    read_documents,
    write_articles,
)
from pipelines.core.io import read_jsonl
from pipelines.studio import server as srv
from pipelines.studio.cli import app
from pipelines.studio.server import StudioError
from pipelines.studio.sync import connect, existing_tasks, find_project, pull, push
from pipelines.studio.tasks import annotation_to_result

pytestmark = pytest.mark.studio

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
TEXTS = [
    "Ukraine said it could not confirm that Russia had used North Korean missiles.",
    f"{FAMILY} A U.S. spokesman said Russia had used North Korean missiles. \U0001f44d\U0001f3fd",
    "Officials in Kyïv said\r\nthe report was false.\r\nThe Kremlin denied that it had used them.",
    "Kye\u0301v officials \u4e2d said that the strike happened.",
]


def gold(article: Article, annotator: str = "gold") -> AnnotationSet:
    """Source = first word, Claim = last three words, Denial = second word; one relation."""
    text = article.text
    words = text.split()

    def span(i: int, label: str, piece: str) -> Span:
        start = text.index(piece)
        return Span(
            id=f"{article.id[:6]}{i}", label=label, start=start, end=start + len(piece), text=piece
        )

    spans = (
        span(0, "Source", words[0]),
        span(1, "Claim", " ".join(words[-3:])),
        span(2, "Denial", words[1]),
    )
    rel = Relation(source=spans[0].id, claim=spans[1].id, stance="unconfirmed")
    return AnnotationSet(
        annotator=annotator,
        provenance="prediction",
        spans=spans,
        relations=(rel,),
        model_version="gold-1",
    )


@dataclass
class GoldPredictor:
    """A real Predictor: pre-annotates with :func:`gold`; ``on_call`` lets a test act mid-push."""

    name: str = "gold"
    version: str = "1"
    calls: int = 0
    on_call: object = None

    def annotate(self, article: Article) -> AnnotationSet:
        self.calls += 1
        if callable(self.on_call):
            self.on_call(self.calls)
        return gold(article)


def articles(n: int = 0) -> list[Article]:
    extra = [
        f"Story {i}: the ministry said that {i} drones were shot down overnight." for i in range(n)
    ]
    return [Article.from_text(t, title=f"t{i}") for i, t in enumerate(TEXTS + extra)]


@pytest.fixture
def client(studio):  # type: ignore[no-untyped-def]
    return connect(studio.url, studio.token)


def test_push_twice_imports_nothing_the_second_time(client, request) -> None:  # type: ignore[no-untyped-def]
    project = request.node.name[:40]
    arts = articles(20)
    first = push(client, arts, project, GoldPredictor(), batch_size=10, progress=False)
    assert (
        first["imported"] == len(arts)
        and first["predictions"] == len(arts)
        and first["project_created"]
    )
    second = push(client, arts, project, GoldPredictor(), batch_size=10, progress=False)
    assert (
        second["imported"] == 0
        and second["unchanged"] == len(arts)
        and not second["project_created"]
    )
    tasks = existing_tasks(client, first["project_id"])
    assert sorted(t["data"]["article_id"] for t in tasks) == sorted(a.id for a in arts)


def test_changed_text_creates_a_new_task_and_flags_the_old(client, request) -> None:  # type: ignore[no-untyped-def]
    project = request.node.name[:40]
    old = Article.from_text("The ministry said that 5 drones were shot down.")
    push(client, [old], project, None, progress=False)
    new = Article(id=old.id, text=old.text.replace("5", "6"))
    result = push(client, [new], project, None, progress=False)
    assert (
        result["imported"] == 1
        and result["changed_articles"] == 1
        and result["stale_tasks_flagged"] == 1
    )
    tasks = existing_tasks(client, result["project_id"])
    assert len(tasks) == 2
    assert [bool(t["data"].get("stale")) for t in sorted(tasks, key=lambda t: t["id"])] == [
        True,
        False,
    ]
    assert push(client, [new], project, None, progress=False)["imported"] == 0


def test_round_trip_annotations_two_users_draft_and_skip(client, studio, request, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """corpus -> LS (annotated through the API by two users) -> pull gives identical spans and relations."""
    project = request.node.name[:40]
    arts = articles()
    push(client, arts, project, GoldPredictor(), progress=False)
    pid = find_project(client, project)
    by_article = {t["data"]["article_id"]: t["id"] for t in existing_tasks(client, pid)}
    email = f"{project[:20]}@example.com"
    second = client.users.create(email=email, username=email.split("@")[0], password="x" * 12)
    for art in arts[:3]:
        result = annotation_to_result(art.text, gold(art))
        client.annotations.create(id=by_article[art.id], result=result)
        client.annotations.create(id=by_article[art.id], result=result, completed_by=second.id)
    headers = {"Authorization": f"Token {studio.token}"}
    draft = httpx.post(
        f"{studio.url}/api/tasks/{by_article[arts[0].id]}/drafts",
        headers=headers,
        json={"result": [], "lead_time": 1},
    )
    assert draft.status_code == 201, draft.text
    client.annotations.create(id=by_article[arts[3].id], result=[], was_cancelled=True)

    pulled = pull(client, project)
    assert pulled.errors == []
    docs = {d.article.id: d for d in pulled.documents}
    assert set(docs) == {a.id for a in arts[:3]}
    for art in arts[:3]:
        doc = docs[art.id]
        assert doc.article == art
        assert sorted(a.annotator for a in doc.annotations) == sorted([studio.username, email])
        want = gold(art)
        for ann in doc.annotations:
            assert ann.spans == want.spans and ann.relations == want.relations
            assert ann.provenance == "gold" and ann.origin.startswith(
                f"label-studio:task={by_article[art.id]},annotation="
            )
    assert pulled.stats.counts["drafts_excluded"] == 1
    assert [s["task"] for s in pulled.stats.skipped] == [by_article[arts[3].id]]

    # the CLI writes the same documents plus the skipped list and the report
    env = {"LABEL_STUDIO_URL": studio.url, "LABEL_STUDIO_API_KEY": studio.token}
    out = tmp_path / "annotations"
    r = CliRunner().invoke(
        app, ["pull", "--out", str(out), "--project", project, "--no-dvc-add"], env=env
    )
    assert r.exit_code == 0, r.output
    assert {d.article.id: d for d in read_documents(out / "annotations.jsonl")} == docs
    assert [s["task"] for s in read_jsonl(out / "skipped.jsonl")] == [by_article[arts[3].id]]
    assert (out / "report.json").exists()


def test_pull_utf16_regions_are_counted_and_bad_offsets_stop_the_pull(
    client, studio, request, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    project = request.node.name[:40]
    art = articles()[1]  # starts with the ZWJ family emoji
    push(client, [art], project, None, progress=False)
    (task,) = existing_tasks(client, find_project(client, project))
    client.annotations.create(
        id=task["id"], result=annotation_to_result(art.text, gold(art), "utf16")
    )
    pulled = pull(client, project)
    assert pulled.errors == [] and pulled.stats.counts["spans_utf16_offsets"] == 3
    assert pulled.documents[0].annotations[0].spans == gold(art).spans

    bad = {"id": "bad", "from_name": "label", "to_name": "text", "type": "labels"}
    bad["value"] = {"start": 1, "end": 5, "text": "spokesman", "labels": ["Source"]}
    ann = client.annotations.create(id=task["id"], result=[bad])
    out = tmp_path / "annotations"
    env = {"LABEL_STUDIO_URL": studio.url, "LABEL_STUDIO_API_KEY": studio.token}
    r = CliRunner().invoke(
        app, ["pull", "--out", str(out), "--project", project, "--no-dvc-add"], env=env
    )
    assert r.exit_code == 1
    (error,) = json.loads((out / "pull-errors.json").read_text())["errors"]
    assert f"task {task['id']}, annotation {ann.id}: offsets [1, 5)" in error
    assert not (out / "annotations.jsonl").exists()


def test_cli_pull_dvc_adds_the_output_inside_a_dvc_repo(client, studio, request, tmp_path) -> None:  # type: ignore[no-untyped-def]
    project = request.node.name[:40]
    art = articles()[0]
    push(client, [art], project, None, progress=False)
    (task,) = existing_tasks(client, find_project(client, project))
    client.annotations.create(id=task["id"], result=annotation_to_result(art.text, gold(art)))
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=repo, check=True)
    out = repo / "data" / "annotations"
    env = {"LABEL_STUDIO_URL": studio.url, "LABEL_STUDIO_API_KEY": studio.token}
    r = CliRunner().invoke(app, ["pull", "--out", str(out), "--project", project], env=env)
    assert r.exit_code == 0, r.output
    assert (repo / "data" / "annotations.dvc").exists()
    assert [d.article.id for d in read_documents(out / "annotations.jsonl")] == [art.id]


def test_cli_push_reports_counts(studio, request, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "articles.jsonl"
    write_articles(path, articles(3))
    env = {"LABEL_STUDIO_URL": studio.url, "LABEL_STUDIO_API_KEY": studio.token}
    args = [
        "push",
        "--articles",
        str(path),
        "--project",
        request.node.name[:40],
        "--predictions",
        "none",
    ]
    r = CliRunner().invoke(app, args, env=env)
    assert r.exit_code == 0, r.output
    assert "imported=7" in r.output
    assert studio.token not in r.output


def test_wrong_token_fails_fast_and_says_what_to_check(studio) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StudioError, match=r"rejected the API key .*LABEL_STUDIO_API_KEY") as e:
        connect(studio.url, "0" * 40)
    assert "0" * 40 not in str(e.value)


def test_personal_access_token_works_too(studio) -> None:  # type: ignore[no-untyped-def]
    """Label Studio >= 1.20 hands out JWT personal access tokens; the SDK exchanges them for access tokens."""
    r = httpx.post(
        f"{studio.url}/api/token/", headers={"Authorization": f"Token {studio.token}"}, timeout=10
    )
    assert r.status_code == 201, r.text
    pat = r.json()["token"]
    assert pat.count(".") == 2  # a JWT, not a legacy token
    assert connect(studio.url, pat).users.whoami().email == studio.username


def test_server_down_or_wrong_url_fails_fast() -> None:
    url = f"http://127.0.0.1:{srv.free_port()}"
    with pytest.raises(StudioError, match=r"cannot reach Label Studio .*LABEL_STUDIO_URL"):
        connect(url, "whatever")


def _hang_up(*socks: socket.socket) -> None:
    """shutdown() then close(): shutdown also wakes a thread blocked reading the socket."""
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


class KillMidRequest:
    """A TCP relay in front of a real server that SIGKILLs it mid-request: once the ``nth`` POST
    whose path contains ``marker`` has been passed on whole (head and body), before the server
    can answer. The crash lands at a known request instead of after a guessed sleep."""

    def __init__(self, server: srv.Server, marker: bytes, nth: int) -> None:
        self.server, self.marker, self.nth = server, marker, nth
        self.seen = 0
        self.killed = threading.Event()  # set once the server is killed and reaped
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        _hang_up(self.listener)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.server.port))
            except OSError:
                return
            threading.Thread(target=self._answers, args=(upstream, client), daemon=True).start()
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _answers(upstream: socket.socket, client: socket.socket) -> None:
        """Server -> client as is; when the server goes away, so does the client's connection."""
        try:
            while chunk := upstream.recv(1 << 16):
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            _hang_up(client, upstream)

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        """Client -> server, one whole request at a time (keep-alive connections carry several)."""
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = client.recv(1 << 16)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                fields = dict(
                    line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line
                )
                fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
                assert b"transfer-encoding" not in fields, "chunked requests are not relayed"
                length = int(fields.get(b"content-length", b"0"))
                while len(buf) < length:
                    chunk = client.recv(1 << 16)
                    if not chunk:
                        return
                    buf += chunk
                body, buf = buf[:length], buf[length:]
                upstream.sendall(head + b"\r\n\r\n" + body)
                line = head.split(b"\r\n", 1)[0]
                if line.startswith(b"POST ") and self.marker in line:
                    with self.lock:
                        self.seen += 1
                        if self.seen == self.nth:
                            self.server.kill()
                            self.killed.set()
        except OSError:
            return
        finally:
            _hang_up(client, upstream)


def test_killed_mid_push_then_rerun_gives_exact_task_set(tmp_path, studio_launcher) -> None:  # type: ignore[no-untyped-def]
    """Kill -9 the server while a batch is being imported; restart it; push again: no loss, no duplicate."""
    server, info = studio_launcher(tmp_path / "ls")
    arts = articles(1500)
    relay = KillMidRequest(server, b"/import", nth=4)  # the 4th batch of 200 reaches the server
    try:
        client = connect(relay.url, info.token)
        with pytest.raises(StudioError, match=r"lost the connection .*rerun") as excinfo:
            push(client, arts, "crash", GoldPredictor(), batch_size=200, progress=False)
    finally:
        relay.close()
    assert relay.killed.wait(timeout=60), "the relay never saw the 4th import request"
    assert not server.alive()
    assert str(excinfo.value).startswith("importing tasks 601-800 of 1504")

    _, info = studio_launcher(info.data_dir, info.creds)
    client = connect(info.url, info.token)
    before = len(existing_tasks(client, find_project(client, "crash")))
    # three whole batches, or four if the killed one had been committed: never part of a batch
    assert before in (600, 800)
    result = push(client, arts, "crash", GoldPredictor(), batch_size=200, progress=False)
    assert result["imported"] == len(arts) - before
    ids = [t["data"]["article_id"] for t in existing_tasks(client, result["project_id"])]
    assert len(ids) == len(set(ids)) == len(arts)
    assert set(ids) == {a.id for a in arts}


def test_up_status_down(tmp_path, monkeypatch, studio_template) -> None:  # type: ignore[no-untyped-def]
    """`up` generates credentials into .env (mode 600, token masked), `down` stops only its process."""
    shutil.copytree(studio_template, tmp_path / ".studio")
    monkeypatch.chdir(tmp_path)
    for key in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", *srv.CREDENTIAL_KEYS):
        monkeypatch.delenv(key, raising=False)
    runner = CliRunner()
    r = runner.invoke(app, ["up", "--port", str(srv.free_port())])
    try:
        assert r.exit_code == 0, r.output
        creds = srv.read_dotenv(Path(".env"))
        assert set(srv.CREDENTIAL_KEYS) <= set(creds)
        assert stat.S_IMODE(os.stat(".env").st_mode) == 0o600
        assert (
            creds["LABEL_STUDIO_USER_TOKEN"] not in r.output
            and "is up at http://127.0.0.1:" in r.output
        )
        s = runner.invoke(app, ["status"])
        assert s.exit_code == 0 and "API OK" in s.output, s.output
    finally:
        server = srv.read_pidfile(Path(".studio"))
        d = runner.invoke(app, ["down"])
    assert d.exit_code == 0 and "stopped pid" in d.output, d.output
    assert server is not None and not server.alive()
    assert runner.invoke(app, ["status"]).exit_code == 1
