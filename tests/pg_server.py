"""A private PostgreSQL server for tests: Debian's server binaries, a temp dir, a free port.

``start()`` runs ``initdb`` and ``pg_ctl start`` from ``/usr/lib/postgresql/<version>/bin`` (the
``postgresql`` Debian package; ``make test`` installs it when run as root) on a cluster in a new
temporary folder, listening on 127.0.0.1 and on a Unix socket in that folder only. PostgreSQL
refuses to run as root, so as root the cluster belongs to, and runs as, the ``postgres`` user
(``runuser``). TCP logins need a password (scram-sha-256); the socket (in the 0700 folder) trusts
its local superuser, which sets up roles and databases. ``Cluster.stop()`` stops the server and
removes the folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "postgres"
RUN_AS = "postgres"  # the OS user the server runs as when the tests run as root
# runuser lives in /usr/sbin, which a plain user's PATH (and `env -i`) often lacks
RUNUSER = shutil.which("runuser", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries, or no user to run them as: the caller skips."""


def bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl."""
    found = [
        d
        for d in Path("/").glob(PG_BIN_GLOB.lstrip("/"))
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file()
    ]
    if not found:
        raise PostgresMissing(
            f"no PostgreSQL server in {PG_BIN_GLOB}: install Debian's `postgresql` "
            "(`make test` does when run as root)"
        )
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)


@dataclass
class Cluster:
    root: Path  # temp folder: data/, the socket, server.log
    port: int
    bin: Path
    run_as: str | None  # OS user running the server (None: this process's user)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def command(self, tool: str, *args: str) -> list[str]:
        cmd = [str(self.bin / tool), *args]
        return [str(RUNUSER), "-u", self.run_as, "--", *cmd] if self.run_as else cmd

    def connect(self, dbname: str = "postgres"):  # type: ignore[no-untyped-def]
        """A psycopg connection as the superuser, over the Unix socket (autocommit)."""
        import psycopg

        return psycopg.connect(
            host=str(self.root), port=self.port, user=SUPERUSER, dbname=dbname, autocommit=True
        )

    def create_database(self, user: str, password: str, name: str) -> str:
        """A login role owning a new database; returns its URL over TCP (password included)."""
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(user), sql.Literal(password)
                )
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(user)
                )
            )
        return f"postgresql://{quote(user)}:{quote(password, safe='')}@127.0.0.1:{self.port}/{quote(name)}"

    def stop(self) -> None:
        """Stop the server (fast shutdown; SIGKILL to its postmaster if that fails), remove the folder."""
        try:
            if (self.data / "postmaster.pid").exists():
                done = subprocess.run(
                    self.command(
                        "pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop"
                    ),
                    capture_output=True,
                    timeout=90,
                )
                if done.returncode != 0 and (self.data / "postmaster.pid").exists():
                    pid = int((self.data / "postmaster.pid").read_text().split()[0])
                    os.kill(pid, signal.SIGKILL)
                    time.sleep(1)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start(port: int, timeout: int = 120) -> Cluster:
    """initdb + pg_ctl start on ``port``; raises :class:`PostgresMissing` when it cannot run."""
    pg_bin = bindir()
    run_as = None
    if os.geteuid() == 0:
        if RUNUSER is None:
            raise PostgresMissing(
                "running as root without `runuser` to start PostgreSQL as another user"
            )
        try:
            owner = pwd.getpwnam(RUN_AS)
        except KeyError:
            raise PostgresMissing(
                f"running as root and no {RUN_AS!r} user to run PostgreSQL as (Debian's postgresql package creates it)"
            ) from None
        run_as = RUN_AS
    root = Path(tempfile.mkdtemp(prefix="claimtrace-pg-"))  # 0700
    if run_as:
        os.chown(root, owner.pw_uid, owner.pw_gid)
    cluster = Cluster(root, port, pg_bin, run_as)
    try:
        subprocess.run(
            cluster.command(
                "initdb", "-D", str(cluster.data), "-U", SUPERUSER, "-E", "UTF8", "--no-locale",
                "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync",
            ),
            check=True, capture_output=True, timeout=timeout,
        )  # fmt: skip
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            cluster.command(
                "pg_ctl", "-D", str(cluster.data), "-l", str(root / "server.log"),
                "-w", "-t", str(timeout), "-o", options, "start",
            ),
            check=True, capture_output=True, timeout=timeout + 30,
        )  # fmt: skip
    except subprocess.CalledProcessError as e:
        log = root / "server.log"
        detail = (e.stderr or b"").decode(errors="replace") + (
            log.read_text(errors="replace") if log.exists() else ""
        )
        cluster.stop()
        raise RuntimeError(f"PostgreSQL did not start on port {port}: {detail[-2000:]}") from None
    except BaseException:
        cluster.stop()
        raise
    return cluster
