"""A team's Label Studio on PostgreSQL: ``claimtrace studio up --database postgresql://...``.

A private PostgreSQL server (Debian's, started by :mod:`pg_server` in a temp dir on a free port)
gets a role and a database; the real ``claimtrace`` command starts Label Studio on it, pushes the
articles, and pulls while 20 annotators submit annotations from a bounded thread pool on
127.0.0.1. The annotators join as a team does, through the organisation's invite link: Label
Studio's user API (``POST /api/users/``) sets no password and hands out no other user's token, so
each one signs up, then takes its own API token from ``/api/current-user/token``.

The first 20 annotations are stored before ``claimtrace studio pull`` starts, the last 20 after
it ended; in between, the others go in rounds of 8 requests, each round racing one more export
(``sync.pull``'s code, in a thread). Checked: every pull that ran during the submissions holds a
consistent subset (all that was stored before it began, nothing sent after it ended, each
annotation whole and identical to the final one, none twice); the final pull holds every
annotation exactly once; the rows are in PostgreSQL (no SQLite file); the database password
appears in no output and no file. The unit tests check the URL parsing and the server environment.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

import pg_server
from pipelines.core.document import (
    STANCES,
    AnnotationSet,
    Article,
    Document,
    Relation,
    Span,
    read_documents,
    write_articles,
)
from pipelines.studio import server as srv
from pipelines.studio.cli import DATABASE_VAR, app
from pipelines.studio.server import Database, StudioError
from pipelines.studio.sync import (
    connect,
    existing_tasks,
    export_tasks,
    find_project,
    tasks_to_documents,
    user_emails,
)
from pipelines.studio.tasks import annotation_to_result
from test_security import assert_no_secret

ANNOTATORS = 20
TASKS = 6
WORKERS = 8  # requests in flight at once
PROJECT = "team"
# what a stray environment could point the server or the CLI at instead
STRAY_ENV = ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", DATABASE_VAR, *srv.CREDENTIAL_KEYS)


# --- the URL and the server environment (no server) ------------------------------------------


def test_database_url_parsing():
    db = Database.from_url(
        "postgresql://ann%40news:p%40ss%2Fw:rd@db.example.org:6543/label%20studio"
    )
    assert (db.user, db.password, db.host, db.port, db.name) == (
        "ann@news",
        "p@ss/w:rd",
        "db.example.org",
        6543,
        "label studio",
    )
    assert db.redacted() == "postgresql://ann@news:****@db.example.org:6543/label studio"
    assert "p@ss" not in repr(db)
    assert db.env() == {
        "DJANGO_DB": "default",
        "POSTGRE_NAME": "label studio",
        "POSTGRE_USER": "ann@news",
        "POSTGRE_PASSWORD": "p@ss/w:rd",
        "POSTGRE_HOST": "db.example.org",
        "POSTGRE_PORT": "6543",
    }
    local = Database.from_url("postgres://ls@/labelstudio?host=/run/postgresql&sslmode=disable")
    assert (local.host, local.port, local.password) == ("/run/postgresql", 5432, "")
    assert local.env()["PGSSLMODE"] == "disable" and local.env()["POSTGRE_PASSWORD"] == ""
    assert local.redacted() == "postgresql://ls@[/run/postgresql]/labelstudio"


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://u:SECRET@h/db", "must be a PostgreSQL URL"),
        ("labelstudio", "must be a PostgreSQL URL"),
        ("postgresql://u:SECRET@h:port/db", "the port must be a number"),
        ("postgresql://:SECRET@h:5432/db", "no USER in the URL"),
        ("postgresql://u:SECRET@h:5432", "no DATABASE in the URL"),
        ("postgresql://u:SECRET@/db", "no HOST in the URL"),
        ("postgresql://u:SECRET@h/db?options=-c%20x", "unsupported URL parameter(s) ['options']"),
    ],
)
def test_bad_database_url_says_what_is_wrong_without_the_password(url, message):
    with pytest.raises(StudioError) as e:
        Database.from_url(url)
    assert message in str(e.value) and "SECRET" not in str(e.value)


def test_server_env_uses_only_the_database_asked_for():
    stray = {
        "PATH": "/bin",
        "DJANGO_DB": "default",
        "LABEL_STUDIO_DJANGO_DB": "default",
        "HEARTEX_POSTGRE_PASSWORD": "old",
        "LABEL_STUDIO_POSTGRE_HOST": "elsewhere",
        "DATABASE_NAME": "/tmp/other.sqlite3",
        "PGSSLMODE": "require",
    }
    assert srv.server_env(stray, None) == {"PATH": "/bin", "DJANGO_DB": "sqlite"}
    db = Database.from_url("postgresql://u:pw@127.0.0.1:5433/ls")
    assert srv.server_env(stray, db) == {"PATH": "/bin", **db.env()}


# --- a real PostgreSQL --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres():  # type: ignore[no-untyped-def]
    """A private PostgreSQL cluster for this module; stopped and removed at teardown."""
    try:
        cluster = pg_server.start(srv.free_port())
    except pg_server.PostgresMissing as e:
        pytest.skip(str(e))
    try:
        yield cluster
    finally:
        cluster.stop()
    assert not cluster.root.exists()


def test_up_with_a_wrong_password_fails_in_one_line_without_it(postgres, tmp_path, monkeypatch):
    postgres.create_database("wrongpw", "right-password", "wrongpw")
    monkeypatch.chdir(tmp_path)
    for key in STRAY_ENV:
        monkeypatch.delenv(key, raising=False)
    url = f"postgresql://wrongpw:not-the-password@127.0.0.1:{postgres.port}/wrongpw"
    r = CliRunner().invoke(app, ["up", "--database", url, "--port", str(srv.free_port())])
    assert r.exit_code == 1
    (line,) = r.output.strip().splitlines()
    assert line.startswith(
        f"error: cannot connect to postgresql://wrongpw:****@127.0.0.1:{postgres.port}/wrongpw: "
    )
    assert 'password authentication failed for user "wrongpw"' in line
    assert "not-the-password" not in r.output
    assert not Path(".env").exists() and not Path(".studio").exists()  # nothing started
    # the same from the environment variable
    monkeypatch.setenv(DATABASE_VAR, url)
    r = CliRunner().invoke(app, ["up", "--port", str(srv.free_port())])
    assert r.exit_code == 1 and "password authentication failed" in r.output
    assert "not-the-password" not in r.output


def team_articles() -> list[Article]:
    return [
        Article.from_text(
            f"Officials in district {j} said on Monday that the new bridge will open in spring, "
            f"while residents denied that traffic would improve before {2030 + j}.",
            title=f"bridge {j}",
        )
        for j in range(TASKS)
    ]


def annotation(article: Article, annotator: str, i: int, j: int) -> AnnotationSet:
    """Annotator ``i``'s work on article ``j``: its own Source word and stance, so a mix-up shows."""
    text, words = article.text, article.text.split()
    source = words[i % 8]
    start = text.index(source)
    claim = "the new bridge will open in spring"
    c0 = text.index(claim)
    spans = (
        Span(id=f"s{i}x{j}", label="Source", start=start, end=start + len(source), text=source),
        Span(id=f"c{i}x{j}", label="Claim", start=c0, end=c0 + len(claim), text=claim),
    )
    rel = Relation(source=spans[0].id, claim=spans[1].id, stance=STANCES[(i + j) % len(STANCES)])
    return AnnotationSet(annotator=annotator, provenance="gold", spans=spans, relations=(rel,))


def command(*args: str) -> list[str]:
    """``claimtrace ARGS`` as installed beside this Python (the venv's ``.venv/bin/claimtrace``)."""
    return [str(Path(sys.executable).with_name("claimtrace")), *args]


def cli_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in STRAY_ENV}


@dataclass
class Annotator:
    email: str
    token: str


def join_by_invite(url: str, invite_url: str, i: int) -> Annotator:
    """Sign up through the invite link (as a browser posts the form), then read the own token."""
    email = f"annotator{i:02d}@example.com"
    with httpx.Client(base_url=url, timeout=120) as web:
        web.get(invite_url).raise_for_status()  # sets the CSRF cookie
        r = web.post(
            invite_url,
            data={
                "email": email,
                "password": secrets.token_urlsafe(12),
                "csrfmiddlewaretoken": web.cookies["csrftoken"],
            },
        )
        assert r.status_code == 302, f"signup of {email} failed: HTTP {r.status_code}"
        token = web.get("/api/current-user/token").raise_for_status().json()["token"]
    return Annotator(email, token)


Pulled = dict[tuple[str, str], tuple]  # type: ignore[type-arg]


def annotation_keys(docs: Iterable[Document]) -> Pulled:
    """(annotator, article id) -> (spans, relations, LS annotation id), failing on any doubled key."""
    found: Pulled = {}
    for doc in docs:
        for ann in doc.annotations:
            key = (ann.annotator, doc.article.id)
            assert key not in found, f"annotation {key} pulled twice"
            ann_id = int(ann.origin.rsplit("annotation=", 1)[1])
            found[key] = (ann.spans, ann.relations, ann_id)
    return found


@pytest.mark.studio
def test_twenty_annotators_on_postgresql_while_a_pull_runs(postgres, tmp_path):
    password = secrets.token_urlsafe(18)
    db_url = postgres.create_database("claimtrace", password, "labelstudio")
    port = srv.free_port()
    outputs: list[str] = []

    def claimtrace(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            command(*args),
            cwd=tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        outputs.append(done.stdout + done.stderr)
        return done

    # the README's command; the first start runs Label Studio's migrations on PostgreSQL (minutes)
    up = claimtrace(
        "studio", "up", "--database", db_url, "--port", str(port), "--timeout", "900", timeout=960
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"database postgresql://claimtrace:****@127.0.0.1:{postgres.port}/labelstudio" in (
            up.stdout
        )
        run_team(tmp_path, port, password, db_url, claimtrace)
    finally:
        down = claimtrace("studio", "down")
    assert down.returncode == 0 and "stopped pid" in down.stdout, down.stdout + down.stderr
    # the password reaches Label Studio through its environment only
    assert not [o for o in outputs if password in o]
    assert_no_secret(tmp_path, password)  # as UTF-8, UTF-16 or base64, in any file
    assert not list(tmp_path.rglob("*.sqlite3"))  # no SQLite store: everything is in PostgreSQL


def run_team(tmp_path: Path, port: int, password: str, db_url: str, claimtrace) -> None:  # type: ignore[no-untyped-def]
    arts = team_articles()
    write_articles(tmp_path / "articles.jsonl", arts)
    push = claimtrace(
        "studio",
        "push",
        "--articles",
        "articles.jsonl",
        "--project",
        PROJECT,
        "--predictions",
        "none",
    )
    assert push.returncode == 0 and f"imported={TASKS}" in push.stderr, push.stdout + push.stderr

    url = f"http://127.0.0.1:{port}"
    admin_token = srv.read_dotenv(tmp_path / ".env")["LABEL_STUDIO_USER_TOKEN"]
    admin = connect(url, admin_token)
    task_of = {
        t["data"]["article_id"]: t["id"]
        for t in existing_tasks(admin, find_project(admin, PROJECT))
    }
    invite = httpx.get(
        f"{url}/api/invite", headers={"Authorization": f"Token {admin_token}"}, timeout=30
    )
    invite_url = invite.raise_for_status().json()["invite_url"]

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        team = list(pool.map(lambda i: join_by_invite(url, invite_url, i), range(ANNOTATORS)))
    assert len({a.token for a in team}) == ANNOTATORS  # each its own token

    def key(job: tuple[int, int]) -> tuple[str, str]:
        """(annotator i, article j) -> (email, article id), as the pull names an annotation."""
        return team[job[0]].email, arts[job[1]].id

    jobs = [(i, j) for j in range(TASKS) for i in range(ANNOTATORS)]
    expected = {key((i, j)): annotation(arts[j], team[i].email, i, j) for i, j in jobs}
    first, held = jobs[:ANNOTATORS], jobs[-ANNOTATORS:]  # article 0 before the pull, the last after
    middle = deque(jobs[ANNOTATORS:-ANNOTATORS])
    created: dict[tuple[str, str], int] = {}

    with httpx.Client(
        base_url=url, timeout=120, limits=httpx.Limits(max_connections=WORKERS)
    ) as api:

        def submit(job: tuple[int, int]) -> None:
            i, j = job
            ann = expected[key(job)]
            r = api.post(
                f"/api/tasks/{task_of[arts[j].id]}/annotations/",
                headers={"Authorization": f"Token {team[i].token}"},
                json={"result": annotation_to_result(arts[j].text, ann), "lead_time": 1.5},
            )
            assert r.status_code == 201, (
                f"annotator {i} on task {j}: HTTP {r.status_code} {r.text[:200]}"
            )
            created[key(job)] = r.json()["id"]

        def check(pulled: Pulled, at_least: set, at_most: set, what: str) -> None:  # type: ignore[type-arg]
            """A consistent subset: all stored before the pull began, nothing sent after it ended,
            each annotation whole and as submitted (none twice: :func:`annotation_keys`)."""
            assert at_least <= set(pulled) <= at_most, f"{what}: {len(pulled)} annotations"
            for name, (spans, relations, ann_id) in pulled.items():
                want = expected[name]
                assert (spans, relations, ann_id) == (want.spans, want.relations, created[name])

        project_id, emails = find_project(admin, PROJECT), user_emails(admin)

        def export_now() -> Pulled:
            """``sync.pull`` without its two lookups, so the export starts at once."""
            result = tasks_to_documents(export_tasks(admin, project_id), emails)
            assert not result.errors, result.errors
            return annotation_keys(result.documents)

        with ThreadPoolExecutor(WORKERS) as pool, ThreadPoolExecutor(1) as puller:
            list(pool.map(submit, first))
            stored = {key(job) for job in first}
            # `claimtrace studio pull` while the annotators go on ...
            concurrent = subprocess.Popen(
                command("studio", "pull", "--out", "concurrent", "--project", PROJECT, "--no-dvc-add"),
                cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            # ... and, each round, one more pull (the same code) racing one batch of submissions
            rounds = []
            while middle:
                batch = [middle.popleft() for _ in range(min(WORKERS, len(middle)))]
                snapshot = puller.submit(export_now)
                wait([pool.submit(submit, job) for job in batch])
                sent = {key(job) for job in batch}
                rounds.append(snapshot.result())
                check(rounds[-1], stored, stored | sent, f"pull of round {len(rounds)}")
                stored |= sent
            pull_output, _ = concurrent.communicate(timeout=600)
            for f in [pool.submit(submit, job) for job in held]:
                f.result()
    assert concurrent.returncode == 0, pull_output
    assert password not in pull_output
    assert len(created) == len(expected) == ANNOTATORS * TASKS

    # the CLI pull that ran meanwhile
    seen = annotation_keys(read_documents(tmp_path / "concurrent" / "annotations.jsonl"))
    first_keys, held_keys = {key(job) for job in first}, {key(job) for job in held}
    check(seen, first_keys, set(expected) - held_keys, "the concurrent `studio pull`")
    # how much of its round's batch each round's pull saw (0..WORKERS: the race)
    racing = [len(r) - len(first) - WORKERS * n for n, r in enumerate(rounds)]

    # the next pull: every annotation exactly once
    final = claimtrace("studio", "pull", "--out", "final", "--project", PROJECT, "--no-dvc-add")
    assert final.returncode == 0, final.stdout + final.stderr
    pulled = annotation_keys(read_documents(tmp_path / "final" / "annotations.jsonl"))
    check(pulled, set(expected), set(expected), "the final pull")
    report = json.loads((tmp_path / "final" / "report.json").read_text())
    assert report["counts"]["documents"] == TASKS

    # and they are PostgreSQL rows
    import psycopg

    with psycopg.connect(db_url) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM task_completion").fetchone()
    assert rows == len(expected)
    print(
        f"\n{ANNOTATORS} annotators, {len(expected)} annotations; the concurrent `studio pull` "
        f"saw {len(seen)}; of each round's {WORKERS}, its pull saw {racing}"
    )
