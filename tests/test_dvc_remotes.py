"""The README's DVC remote commands, run as written in a throw-away copy of the repo's DVC config.

Every ``.venv/bin/dvc remote ...`` line of the README's "DVC remotes" block runs (through this
venv's DVC) in a fresh git + ``dvc init`` folder whose ``.dvc/config`` is the project's. Then:
the three remotes are there with their URLs, the default is still ``local``, and what was set with
``--local`` is in ``.dvc/config.local`` only. No data moves: the machine reaches no cloud.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_remote_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.split(r"\n##+ ", text.split("### DVC remotes", 1)[1], maxsplit=1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "no bash block in the README's DVC remotes section"
    lines = [line for line in block[1].splitlines() if line.startswith(".venv/bin/dvc remote ")]
    return [shlex.split(line)[1:] for line in lines]


def dvc(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"dvc {' '.join(args)}: {done.stderr}"
    return done.stdout


def test_readme_remote_commands_add_remotes_and_keep_local_the_default(tmp_path):
    commands = readme_remote_commands()
    assert len(commands) >= 7 and all(c[:2] == ["remote", c[1]] for c in commands)
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    dvc(repo, "init", "-q")
    shutil.copy(ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    for args in commands:
        dvc(repo, *args)

    def url(name: str) -> str:
        return dvc(repo, "config", f"remote.{name}.url").strip()

    assert url("s3") == "s3://my-bucket/claimtrace"
    assert url("gcs") == "gs://my-bucket/claimtrace"
    assert url("ssh") == "ssh://storage.example.org/srv/claimtrace-dvc"
    assert url("local") == str(tmp_path / "claimtrace-dvc-storage")  # ../../ from .dvc/
    assert dvc(repo, "remote", "default").strip() == "local"

    shared = (repo / ".dvc" / "config").read_text(encoding="utf-8")
    private = (repo / ".dvc" / "config.local").read_text(encoding="utf-8")
    for setting in ("profile = newsroom", "credentialpath = ", "keyfile = "):
        assert setting in private and setting not in shared
    assert "user = annotator" in shared
    ignored = subprocess.run(["git", "check-ignore", "-q", ".dvc/config.local"], cwd=repo)
    assert ignored.returncode == 0  # the --local settings never reach git
