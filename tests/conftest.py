"""Shared fixtures. Each fixture starts or finds a REAL component (no mocks) and cleans up after itself."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.studio import server as srv

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The public corpora, read-only: ``$CLAIMTRACE_DATA_MIRROR`` (CI sets it), else the
    ``shared/data`` folder beside the checkout; tests that need it skip, saying so, without it."""
    root = Path(os.environ.get("CLAIMTRACE_DATA_MIRROR") or ROOT.parent / "shared" / "data")
    missing = [c for c in ("fnc1/anchors", "polnear/data", "emergent") if not (root / c).is_dir()]
    if missing:
        pytest.skip(
            f"no data mirror at {root} (missing {missing}): set CLAIMTRACE_DATA_MIRROR to the shared data folder"
        )
    return root


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
