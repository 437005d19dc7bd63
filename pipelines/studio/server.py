"""Start, find and stop a local Label Studio server, and resolve where the API is.

The server is ``label-studio start`` in its own process group (SQLite store under a data dir, or
a team's PostgreSQL database: :class:`Database`), bound to 127.0.0.1, telemetry off, with the
admin user and its API token created from LABEL_STUDIO_USERNAME / LABEL_STUDIO_PASSWORD /
LABEL_STUDIO_USER_TOKEN. A pidfile in the data dir lets ``down`` stop only the process ``up``
started.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

DEFAULT_DATA_DIR = Path(".studio")
DEFAULT_PORT = 8080
DOTENV = Path(".env")
PIDFILE = "server.json"
LOGFILE = "server.log"
CREDENTIAL_KEYS = ("LABEL_STUDIO_USERNAME", "LABEL_STUDIO_PASSWORD", "LABEL_STUDIO_USER_TOKEN")

# Sentry DSNs default to HumanSignal's; empty disables them. No analytics, no PyPI version check.
QUIET_ENV = {
    "SENTRY_DSN": "",
    "FRONTEND_SENTRY_DSN": "",
    "COLLECT_ANALYTICS": "false",
    "LATEST_VERSION_CHECK": "false",
    "LOG_LEVEL": "WARNING",
}
# The server we start listens on 127.0.0.1 only and calls the ML backend (`studio backend`) on
# 127.0.0.1: Label Studio refuses local addresses for ML backends (ML_BLOCK_LOCAL_IP) and for the
# webhook it adds with each backend (SSRF_PROTECTION_ENABLED), a guard for servers that users on
# a network can make fetch URLs. Set either in the environment to keep Label Studio's default.
LOCAL_ML_ENV = {"ML_BLOCK_LOCAL_IP": "false", "SSRF_PROTECTION_ENABLED": "false"}


class StudioError(RuntimeError):
    """A Label Studio problem, worded as what to check."""


# --- database ------------------------------------------------------------------------------------

# Label Studio's own database settings (label_studio/core/settings/base.py, DATABASES_ALL):
# DJANGO_DB=default selects PostgreSQL from POSTGRE_NAME/USER/PASSWORD/HOST/PORT, DJANGO_DB=sqlite
# the file DATABASE_NAME (default: label_studio.sqlite3 in the data dir). Label Studio reads each
# name as LABEL_STUDIO_<NAME>, then HEARTEX_<NAME>, then <NAME>: the prefixed ones would win, so
# they are removed from the server's environment and the database is always the one asked for.
DATABASE_ENV = (
    "DJANGO_DB",
    "DATABASE_NAME",
    "POSTGRE_NAME",
    "POSTGRE_USER",
    "POSTGRE_PASSWORD",
    "POSTGRE_HOST",
    "POSTGRE_PORT",
)
LS_ENV_PREFIXES = ("LABEL_STUDIO_", "HEARTEX_", "")
DATABASE_URL_FORM = "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
DATABASE_QUERY = ("host", "sslmode")  # libpq URL parameters passed on (socket dir, TLS)
DEFAULT_PG_PORT = 5432


@dataclass(frozen=True)
class Database:
    """A PostgreSQL database for Label Studio, from a libpq-style URL. The password is kept out
    of ``repr`` and of every message (:meth:`redacted`)."""

    user: str
    password: str = field(repr=False)
    host: str
    port: int
    name: str
    sslmode: str | None = None

    @classmethod
    def from_url(cls, url: str) -> Database:
        """``postgresql://USER:PASSWORD@HOST:PORT/DATABASE`` (percent-encoded parts; port 5432 by
        default; ``?host=/socket/dir`` for a Unix socket, ``?sslmode=...``); a
        :class:`StudioError` naming what is wrong, never the password, otherwise."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("postgresql", "postgres"):
            raise StudioError(
                f"--database must be a PostgreSQL URL, {DATABASE_URL_FORM}; got scheme {parts.scheme or '(none)'!r}"
            )
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - set(DATABASE_QUERY))
        if unknown:
            raise StudioError(
                f"--database: unsupported URL parameter(s) {unknown}; Label Studio takes {list(DATABASE_QUERY)}"
            )
        try:
            port = parts.port or DEFAULT_PG_PORT
        except ValueError:
            raise StudioError(
                f"--database: the port must be a number, as in {DATABASE_URL_FORM}"
            ) from None
        host = query.get("host", [""])[-1] or unquote(parts.hostname or "")
        name = unquote(parts.path.lstrip("/"))
        user = unquote(parts.username or "")
        missing = [k for k, v in (("USER", user), ("HOST", host), ("DATABASE", name)) if not v]
        if missing:
            raise StudioError(
                f"--database: no {'/'.join(missing)} in the URL ({DATABASE_URL_FORM})"
            )
        sslmode = query.get("sslmode", [None])[-1]
        return cls(user, unquote(parts.password or ""), host, port, name, sslmode)

    def redacted(self) -> str:
        """The URL with the password as ``****``: safe to print, log or store."""
        secret = ":****" if self.password else ""
        host = f"{self.host}:{self.port}" if not self.host.startswith("/") else f"[{self.host}]"
        return f"postgresql://{self.user}{secret}@{host}/{self.name}"

    def env(self) -> dict[str, str]:
        """The server environment for Label Studio's PostgreSQL settings."""
        env = {
            "DJANGO_DB": "default",
            "POSTGRE_NAME": self.name,
            "POSTGRE_USER": self.user,
            "POSTGRE_PASSWORD": self.password,
            "POSTGRE_HOST": self.host,
            "POSTGRE_PORT": str(self.port),
        }
        if self.sslmode:
            env["PGSSLMODE"] = self.sslmode  # read by libpq: Label Studio has no setting for it
        return env

    def check(self, timeout: int = 10) -> None:
        """Connect once (psycopg, as Label Studio does), so a wrong URL fails in seconds with
        PostgreSQL's own reason instead of a server that dies during startup."""
        import psycopg

        try:
            psycopg.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                dbname=self.name,
                sslmode=self.sslmode or "prefer",
                connect_timeout=timeout,
            ).close()
        except psycopg.Error as e:
            reason = " ".join(str(e).split()) or type(e).__name__
            if self.password:
                reason = reason.replace(self.password, "****")
            raise StudioError(f"cannot connect to {self.redacted()}: {reason}") from None


def database_env(database: Database | None) -> dict[str, str]:
    """Label Studio's database settings: PostgreSQL, or SQLite in the data dir when None."""
    return database.env() if database is not None else {"DJANGO_DB": "sqlite"}


def server_env(base: dict[str, str], database: Database | None) -> dict[str, str]:
    """``base`` without any database setting Label Studio would read, plus ours."""
    names = {prefix + key for key in DATABASE_ENV for prefix in LS_ENV_PREFIXES}
    return {
        **{k: v for k, v in base.items() if k not in names and k != "PGSSLMODE"},
        **database_env(database),
    }


def mask(secret: str) -> str:
    return secret[:4] + "…" + f"({len(secret)} chars)" if len(secret) > 8 else "****"


def read_dotenv(path: Path = DOTENV) -> dict[str, str]:
    """KEY=VALUE lines (``#`` comments, optional quotes); a missing file is empty."""
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def setting(key: str, dotenv: Path = DOTENV) -> str | None:
    """Environment first, then the ignored ``.env``."""
    return os.environ.get(key) or read_dotenv(dotenv).get(key) or None


def ensure_credentials(dotenv: Path = DOTENV) -> dict[str, str]:
    """Admin credentials from env/.env; missing ones are generated and appended to ``.env`` (mode 600)."""
    creds = {k: v for k in CREDENTIAL_KEYS if (v := setting(k, dotenv))}
    generated = {
        "LABEL_STUDIO_USERNAME": "admin@example.com",
        "LABEL_STUDIO_PASSWORD": secrets.token_urlsafe(16),
        "LABEL_STUDIO_USER_TOKEN": secrets.token_hex(20),
    }
    missing = {k: generated[k] for k in CREDENTIAL_KEYS if k not in creds}
    if missing:
        existing = dotenv.read_text(encoding="utf-8") if dotenv.exists() else ""
        sep = "" if not existing or existing.endswith("\n") else "\n"
        lines = "".join(f"{k}={v}\n" for k, v in missing.items())
        dotenv.write_text(
            existing + sep + "# generated by `claimtrace studio up`\n" + lines, encoding="utf-8"
        )
        dotenv.chmod(0o600)
        creds.update(missing)
    return creds


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


@dataclass
class Server:
    """A Label Studio process this code started (``pid`` leads its own process group)."""

    pid: int
    port: int
    data_dir: Path
    host: str = "127.0.0.1"
    database: str | None = None  # the PostgreSQL URL, password redacted; None: SQLite

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def alive(self) -> bool:
        """The process exists and has not exited (a zombie counts as exited)."""
        try:
            os.kill(self.pid, 0)
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (ProcessLookupError, FileNotFoundError):
            return False
        return state not in ("Z", "X")

    def is_label_studio(self) -> bool:
        """Alive and still label-studio: a pidfile's pid may since belong to another process."""
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except FileNotFoundError:
            return False
        return self.alive() and b"label-studio" in cmdline

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the whole process group, SIGKILL after ``timeout``; reaps the leader if it is our child."""
        if not self.alive():
            _reap(self.pid)
            return
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _reap(self.pid):
                return
            time.sleep(0.2)
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        while not _reap(self.pid):
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the process group (simulates a crash)."""
        os.killpg(self.pid, signal.SIGKILL)
        while not _reap(self.pid):
            time.sleep(0.05)


def _reap(pid: int) -> bool:
    """True once ``pid`` is gone (reaped here if it is our child)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def start(
    data_dir: Path,
    port: int,
    creds: dict[str, str],
    host: str = "127.0.0.1",
    database: Database | None = None,
) -> Server:
    """Launch ``label-studio start`` in the background (own session), logging to ``<data_dir>/server.log``.

    The store is SQLite in ``data_dir`` or, given a :class:`Database`, that PostgreSQL database
    (its password reaches the server through its environment only; ``data_dir`` still holds the
    log, pidfile, secret key and uploads)."""
    if port_in_use(port, host):
        # label-studio would silently move to the next free port; fail instead
        raise StudioError(f"port {port} on {host} is already in use; pick another with --port")
    data_dir = data_dir.absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    exe = shutil.which("label-studio", path=str(Path(sys.executable).parent)) or shutil.which(
        "label-studio"
    )
    if exe is None:
        raise StudioError(
            "the `label-studio` command is not installed in this environment (pip install label-studio)"
        )
    env = server_env(
        {
            **LOCAL_ML_ENV,
            **os.environ,
            **QUIET_ENV,
            **creds,
            "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        },
        database,
    )
    cmd = [
        exe, "start", "--no-browser", "--internal-host", host, "--port", str(port),
        # Label Studio >= 1.20 disables legacy ``Token`` auth for new organisations; the SDK and
        # LABEL_STUDIO_USER_TOKEN use it, so enable it when the organisation is first created.
        "--enable-legacy-api-token",
    ]  # fmt: skip
    with open(data_dir / LOGFILE, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Server(
        pid=proc.pid,
        port=port,
        data_dir=data_dir,
        host=host,
        database=database.redacted() if database is not None else None,
    )


def wait_ready(server: Server, token: str | None, timeout: float = 180) -> float:
    """Poll ``/health`` then (with a token) an authenticated call until both answer; returns seconds waited."""
    t0 = time.monotonic()
    while True:
        if not server.alive():
            raise StudioError(
                f"Label Studio exited during startup; see {server.data_dir / LOGFILE}"
            )
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                if token is None:
                    return time.monotonic() - t0
                r = httpx.get(
                    f"{server.url}/api/current-user/whoami",
                    headers={"Authorization": f"Token {token}"},
                    timeout=5,
                )
                if r.status_code == 200:
                    return time.monotonic() - t0
                if r.status_code in (401, 403):
                    raise StudioError(
                        f"Label Studio at {server.url} rejects LABEL_STUDIO_USER_TOKEN {mask(token)} (HTTP {r.status_code}); "
                        f"the data dir {server.data_dir} was probably created with other credentials"
                    )
        except httpx.TransportError:
            pass
        if time.monotonic() - t0 > timeout:
            raise StudioError(
                f"Label Studio did not answer within {timeout:.0f}s; see {server.data_dir / LOGFILE}"
            )
        time.sleep(0.5)


def write_pidfile(server: Server) -> None:
    info = {
        "pid": server.pid,
        "port": server.port,
        "host": server.host,
        "url": server.url,
        "database": server.database,
        "started_at": time.time(),
    }
    (server.data_dir / PIDFILE).write_text(json.dumps(info), encoding="utf-8")


def read_pidfile(data_dir: Path) -> Server | None:
    path = data_dir / PIDFILE
    if not path.exists():
        return None
    info = json.loads(path.read_text(encoding="utf-8"))
    return Server(
        pid=info["pid"],
        port=info["port"],
        data_dir=data_dir.absolute(),
        host=info["host"],
        database=info.get("database"),
    )


def connection(data_dir: Path = DEFAULT_DATA_DIR, dotenv: Path = DOTENV) -> tuple[str, str]:
    """(url, api key): LABEL_STUDIO_URL + LABEL_STUDIO_API_KEY (env or .env), else the server ``up`` started."""
    url, key = setting("LABEL_STUDIO_URL", dotenv), setting("LABEL_STUDIO_API_KEY", dotenv)
    if url:
        if not key:
            raise StudioError(
                f"LABEL_STUDIO_URL is {url} but LABEL_STUDIO_API_KEY is not set: copy the token from "
                "Label Studio > Account & Settings into the environment or .env"
            )
        return url.rstrip("/"), key
    server = read_pidfile(data_dir)
    token = key or setting("LABEL_STUDIO_USER_TOKEN", dotenv)
    if server is None or not server.is_label_studio() or not token:
        raise StudioError(
            "no Label Studio to talk to: run `claimtrace studio up`, or set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY"
        )
    return server.url, token
