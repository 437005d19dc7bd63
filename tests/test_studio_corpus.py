"""The ingested corpus in a real Label Studio: the seed article's task, and an edited article.

Runs the real `ingest` command (subprocess) on the seed from the data mirror and on files written
here, pushes its output with the real sync code to the session's Label Studio, and reads the
tasks back through the API.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipelines.core.document import read_articles
from pipelines.studio import labeling
from pipelines.studio.sync import connect, existing_tasks, find_project, push

pytestmark = pytest.mark.studio
ROOT = Path(__file__).resolve().parents[1]
SEED = "seeds/000_05a0f9568dd331cd.txt"
BODY = "Officials said the talks had stalled {how}, according to a statement. " * 4


def ingest(tmp_path: Path, *inputs: Path) -> list:
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump({"ingest": {"inputs": list(map(str, inputs)), "min_chars": 200}})
    )
    out = tmp_path / "articles.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.sources.ingest", str(out), "--params", str(params)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return list(read_articles(out))


def test_seed_task_holds_the_cleaned_text_and_shows_its_title(studio, mirror, tmp_path, request):
    seeds = tmp_path / "raw-seeds"
    seeds.mkdir()
    (seeds / Path(SEED).name).write_bytes((mirror / SEED).read_bytes())  # as fetch copies it
    articles = ingest(tmp_path, seeds)
    (seed,) = articles
    client = connect(studio.url, studio.token)
    project = request.node.name[:40]
    result = push(client, articles, project, None, progress=False)
    assert result["imported"] == 1
    pid = find_project(client, project)
    (task,) = existing_tasks(client, pid)
    data = task["data"]
    assert data["text"] == seed.text and data["article_id"] == seed.id
    raw = (mirror / SEED).read_text(encoding="utf-8")
    title = raw.split("\n", 1)[0]
    assert data["title"] == data["heading"] == title and data["date"] == "2024-01-06"
    assert not data["text"].startswith(title) and "Photo Credit" not in data["text"]
    assert data["origin"] == f"file:{Path(SEED).name}"
    # the labeling config shows the heading above the text
    config = client.projects.get(pid).label_config
    assert config.strip() == labeling.label_config().strip() and "$heading" in config


def test_an_edited_article_makes_its_old_task_stale(studio, tmp_path, request):
    """Before, ids hashed the text: the edit imported a second live task and flagged nothing."""
    folder = tmp_path / "articles"
    folder.mkdir()
    story = folder / "kyiv.txt"
    story.write_text(BODY.format(how="for months"), encoding="utf-8")
    client = connect(studio.url, studio.token)
    project = request.node.name[:40]
    (old,) = ingest(tmp_path, folder)
    push(client, [old], project, None, progress=False)
    story.write_text(BODY.format(how="for several months"), encoding="utf-8")
    (new,) = ingest(tmp_path, folder)
    assert new.id == old.id and new.version != old.version
    result = push(client, [new], project, None, progress=False)
    assert result["changed_articles"] == 1 and result["stale_tasks_flagged"] == 1
    tasks = sorted(existing_tasks(client, result["project_id"]), key=lambda t: t["id"])
    assert [t["data"]["article_id"] for t in tasks] == [old.id, old.id]
    assert [bool(t["data"].get("stale")) for t in tasks] == [True, False]
    assert [t["data"]["heading"] for t in tasks] == ["kyiv.txt", "kyiv.txt"]
