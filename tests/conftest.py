"""Shared fixtures. Each fixture starts or finds a REAL component (no mocks) and cleans up after itself."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.studio import server as srv

ROOT = Path(__file__).resolve().parents[1]
MIRROR_ENV = "CLAIMTRACE_DATA_MIRROR"
DEFAULT_MIRROR = ROOT.parent / "shared" / "data"


def missing_from_mirror(root: Path) -> list[str]:
    """What ``root`` lacks of the manifest (every corpus ``fetch`` knows), one entry per corpus."""
    from pipelines.sources.fetch import load_manifest

    missing = []
    for name, spec in load_manifest().items():
        absent = [rel for rel in spec["files"] if not (root / spec["dest"] / rel).is_file()]
        if absent:
            missing.append(
                f"{name}: {len(absent)} of {len(spec['files'])} files, e.g. {spec['dest']}/{absent[0]}"
            )
    return missing


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The public corpora, read-only: ``$CLAIMTRACE_DATA_MIRROR`` (CI sets it), else the
    ``shared/data`` folder beside the checkout.

    A mirror that is named (or present at the default place) but lacks a manifest file is an
    error naming the folder and the files; the tests skip only when the variable is unset and
    the default folder does not exist (a machine without the corpora).
    """
    value = os.environ.get(MIRROR_ENV)
    root = Path(value) if value else DEFAULT_MIRROR
    where = f"{MIRROR_ENV}={value}" if value else f"the default data mirror {root}"
    if not value and not root.exists():
        pytest.skip(f"no data mirror: {MIRROR_ENV} is unset and {root} does not exist")
    if not root.is_dir():
        pytest.fail(f"{where}: no such directory", pytrace=False)
    missing = missing_from_mirror(root)
    if missing:
        pytest.fail(f"{where}: incomplete, missing {'; '.join(missing)}", pytrace=False)
    return root.resolve()


# --- a throw-away copy of the repository, as a fresh DVC project -------------------------------

VENV = Path(sys.prefix)
PLAIN_PATH = "/usr/local/bin:/usr/bin:/bin"  # a login shell's, without any virtualenv
COPY_SKIPPED = ("tests/", ".venv/", "metrics/", "dvclive/", "benchmarks/")


def copy_repo(dest: Path, mirror: Path) -> dict[str, str]:
    """Copy the repository's tracked and unignored files to ``dest`` with ``params.ci.yaml`` as
    its params, as a new git + DVC repo; returns the plain environment to run commands in.

    The committed run's dvc.lock and metrics stay behind: the first repro there runs from scratch.
    """
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, files.split("\0")):
        src = ROOT / name
        if src.is_file() and name != "dvc.lock" and not name.startswith(COPY_SKIPPED):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    shutil.copy2(ROOT / "params.ci.yaml", dest / "params.yaml")
    assert sys.prefix != sys.base_prefix, "the tests run in the project's venv (make test)"
    env = {"HOME": os.environ["HOME"], "PATH": PLAIN_PATH, MIRROR_ENV: str(mirror)}
    env |= dict.fromkeys(("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"), "claimtrace-test")
    env |= dict.fromkeys(("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"), "test@claimtrace.invalid")
    run(["git", "init", "-q"], dest, env)
    run([str(VENV / "bin" / "dvc"), "init", "-q", "-f"], dest, env)
    run(["git", "add", "-A"], dest, env)
    run(["git", "commit", "-qm", "claimtrace copy"], dest, env)  # DVCLive logs against a commit
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run ``cmd``; its stdout + stderr, or a failed assertion with their end."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=2400)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{out[-6000:]}"
    return out


# --- a real browser ----------------------------------------------------------------------------

CHROMIUM = Path(
    "/usr/bin/chromium"
)  # Debian's (make browser): Playwright's download needs a network
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chromium() -> Iterator[object]:
    """Headless Debian chromium driven by Playwright (a ``playwright.sync_api.Browser``)."""
    if not CHROMIUM.exists():
        pytest.skip("needs Debian chromium: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


# --- Label Studio ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Studio:
    """A running Label Studio: ``url``, admin ``token`` (legacy), ``data_dir``, ``username``."""

    url: str
    token: str
    data_dir: Path
    username: str
    password: str

    @property
    def creds(self) -> dict[str, str]:
        return {
            "LABEL_STUDIO_USERNAME": self.username,
            "LABEL_STUDIO_PASSWORD": self.password,
            "LABEL_STUDIO_USER_TOKEN": self.token,
        }


@pytest.fixture(scope="session")
def studio_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated Label Studio data dir without users: copying it saves each new server the
    migrations (~25 s on an idle 2-core box, minutes under load; a restart takes ~10 s)."""
    data_dir = tmp_path_factory.mktemp("studio-template")
    server = srv.start(data_dir, srv.free_port(), dict.fromkeys(srv.CREDENTIAL_KEYS, ""))
    try:
        srv.wait_ready(server, None, timeout=600)
    finally:
        server.stop()
    (data_dir / srv.LOGFILE).unlink()
    return data_dir


def start_studio(
    data_dir: Path, creds: dict[str, str] | None = None, template: Path | None = None
) -> tuple[srv.Server, Studio]:
    """Start Label Studio on a free 127.0.0.1 port; fresh credentials unless restarting on ``data_dir``.

    A new ``data_dir`` starts as a copy of ``template`` when given. Callers must ``server.stop()``
    it (the whole process group).
    """
    if template is not None and not data_dir.exists():
        shutil.copytree(template, data_dir)
    creds = creds or {
        "LABEL_STUDIO_USERNAME": "admin@example.com",
        "LABEL_STUDIO_PASSWORD": secrets.token_urlsafe(12),
        "LABEL_STUDIO_USER_TOKEN": secrets.token_hex(20),
    }
    server = srv.start(data_dir, srv.free_port(), creds)
    try:
        srv.wait_ready(server, creds["LABEL_STUDIO_USER_TOKEN"], timeout=300)
    except BaseException:
        server.stop()
        raise
    info = Studio(
        server.url,
        creds["LABEL_STUDIO_USER_TOKEN"],
        server.data_dir,
        creds["LABEL_STUDIO_USERNAME"],
        creds["LABEL_STUDIO_PASSWORD"],
    )
    return server, info


@pytest.fixture
def studio_launcher(studio_template: Path) -> Iterator[Callable[..., tuple[srv.Server, Studio]]]:
    """``launch(data_dir, creds=None)`` starts an extra server (e.g. to kill and restart it);
    every server it started is stopped at teardown."""
    servers: list[srv.Server] = []

    def launch(data_dir: Path, creds: dict[str, str] | None = None) -> tuple[srv.Server, Studio]:
        server, info = start_studio(data_dir, creds, template=studio_template)
        servers.append(server)
        return server, info

    yield launch
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def studio(tmp_path_factory: pytest.TempPathFactory, studio_template: Path) -> Iterator[Studio]:
    """One real Label Studio for the session, on its own copy of the template."""
    server, info = start_studio(
        tmp_path_factory.mktemp("studio") / "data", template=studio_template
    )
    try:
        yield info
    finally:
        server.stop()


# --- CI: a test that CI needs must not skip ----------------------------------------------------

NO_SKIPS_ENV = "CLAIMTRACE_NO_SKIPS"  # set by .ci/run: every skip outside ALLOWED_SKIPS fails

# Skips CI accepts: test (node id without its parameters) -> why. Each entry hides whatever that
# test would catch, so keep this empty or nearly; a skip for a missing tool, file or mirror is
# never listed here (CI has them all, and losing one must turn the run red).
ALLOWED_SKIPS: dict[str, str] = {}


def no_skips() -> bool:
    return os.environ.get(NO_SKIPS_ENV, "") not in ("", "0")


def _skip_reason(longrepr: object) -> str:
    return longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)


def pytest_report_header(config: pytest.Config) -> str | None:
    if no_skips():
        return f"{NO_SKIPS_ENV}=1: a skipped test fails unless tests/conftest.py ALLOWED_SKIPS names it"
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not (report.skipped and no_skips()) or hasattr(report, "wasxfail"):
        return
    allowed = ALLOWED_SKIPS.get(item.nodeid.split("[")[0])
    if allowed and isinstance(report.longrepr, tuple):
        path, line, reason = report.longrepr
        report.longrepr = (path, line, f"{reason} [allowed in CI: {allowed}]")
    elif not allowed:
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} skipped ({_skip_reason(report.longrepr)}), but with {NO_SKIPS_ENV}=1 "
            "(CI) every test must run: give the machine what the test needs, or list the test "
            "with its reason in ALLOWED_SKIPS (tests/conftest.py)"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """A whole module skipped at import (``pytest.importorskip`` and the like) fails too."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and no_skips():
        report.outcome = "failed"
        report.longrepr = (
            f"{collector.nodeid} skipped at collection ({_skip_reason(report.longrepr)}), but "
            f"with {NO_SKIPS_ENV}=1 (CI) every test must run"
        )


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Exported ONNX graphs of this session's models go to a temporary cache, not ~/.cache
    (commands started by tests inherit the variable)."""
    path = tmp_path_factory.mktemp("onnx-cache")
    saved = os.environ.get("CLAIMTRACE_CACHE")
    os.environ["CLAIMTRACE_CACHE"] = str(path)
    yield path
    if saved is None:
        os.environ.pop("CLAIMTRACE_CACHE", None)
    else:
        os.environ["CLAIMTRACE_CACHE"] = saved
