"""The annotation loop on real parts: model -> Label Studio -> annotators -> DVC -> next model.

``test_the_readme_annotation_loop`` runs the README's "annotation loop" commands, in order, in a
throw-away copy of the repository with ``params.ci.yaml`` (tiny models): the ML backend serving
the trained models, ``push`` (uncertainty, two annotators per task), ``connect-backend``, two
annotators through the API, ``pull`` (agreement written back to the tasks), ``dvc repro`` (the
annotations in the datasets, a new model version), and ``push`` again (the new version's
predictions beside the old ones), while the backend reloads and serves the new version. The
only change to the README's lines is a free port in place of 9090.

The other tests pin down push's ordering and attaching with a scoring predictor of their own,
and the backend's answers to bad input, without training anything.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from conftest import PLAIN_PATH, VENV, copy_repo, run
from pipelines.core.document import AnnotationSet, Article, Relation, Span
from pipelines.studio import server as srv
from pipelines.studio.backend import ModelSlot, make_server
from pipelines.studio.sync import (
    connect,
    existing_tasks,
    find_project,
    pull,
    push,
    write_agreement,
)
from pipelines.studio.tasks import annotation_to_result, article_to_task, uncertainty

pytestmark = pytest.mark.studio
ROOT = Path(__file__).resolve().parents[1]
LOOP_MARK = "<!-- annotation-loop:"
README_PORT = "9090"

# articles an editor drops into seeds/ for annotation (ingest reads every .txt there)
ARTICLES = {
    "talks.txt": "Officials in Kyiv said the talks with Moscow had stalled for months. "
    "The foreign ministry denied that a ceasefire had been agreed. "
    "A spokesman for the Kremlin said the delegation would return next week.",
    "grain.txt": "The agriculture minister said grain exports rose sharply in March. "
    "Traders told Reuters that insurance costs had doubled since January. "
    "The port authority could not confirm that two ships had been damaged.",
    "power.txt": "The energy company said repairs to the power plant would take weeks. "
    "Regional officials denied that the blackout was caused by sabotage. "
    "Engineers said the damaged transformer had been replaced on Sunday.",
    "border.txt": "Border guards said more than 300 people crossed overnight. "
    "The interior ministry said the new checkpoint would open in April. "
    "Local residents told reporters that the queues had grown longer every day.",
    "budget.txt": "The finance minister said the budget deficit would shrink next year. "
    "Opposition leaders denied that they had agreed to the spending cuts. "
    "Analysts said the central bank was likely to keep interest rates unchanged.",
}


def readme_loop() -> list[str]:
    """The README's annotation-loop commands (comments and comment lines dropped)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split(LOOP_MARK, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = (re.sub(r"\s+#.*$", "", line).strip() for line in block.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def wait_for_version(url: str, version: str | None = None, timeout: float = 60) -> str:
    """Poll the backend's ``/setup`` until it answers (with ``version`` when given)."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            r = httpx.post(f"{url}/setup", json={}, timeout=5)
            got = r.json().get("model_version") if r.status_code == 200 else None
            if got and version in (None, got):
                return got
            last = f"HTTP {r.status_code}, model_version {got}"
        except httpx.TransportError as e:
            last = type(e).__name__
        time.sleep(0.5)
    raise AssertionError(f"ML backend at {url}: {last} after {timeout:.0f}s, wanted {version}")


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def repo(tmp_path_factory, mirror, studio) -> tuple[Path, dict[str, str]]:
    """A copy of the repository with the articles to annotate and its models trained once
    (what `make pipeline` leaves), and the environment of an activated venv."""
    dest = tmp_path_factory.mktemp("loop") / "claimtrace"
    env = copy_repo(dest, mirror)
    for name, text in ARTICLES.items():
        (dest / "seeds" / name).write_text(text, encoding="utf-8")
    env |= {
        "PATH": f"{VENV / 'bin'}:{PLAIN_PATH}",
        "VIRTUAL_ENV": str(VENV),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
        "LABEL_STUDIO_URL": studio.url,
        "LABEL_STUDIO_API_KEY": studio.token,
    }
    run(["dvc", "repro"], dest, env)
    return dest, env


def _second_opinion(ann: AnnotationSet) -> AnnotationSet:
    """The same annotation without its last Claim (and that Claim's relations): a disagreement."""
    claims = [s for s in ann.spans if s.label == "Claim"]
    if len(claims) < 2:
        return ann
    drop = claims[-1].id
    return replace(
        ann,
        spans=tuple(s for s in ann.spans if s.id != drop),
        relations=tuple(r for r in ann.relations if r.claim != drop),
    )


def _annotations(client, task_id: int) -> list[tuple[int, str]]:
    return sorted(
        (a.id, json.dumps(a.result, sort_keys=True)) for a in client.annotations.list(id=task_id)
    )


@pytest.mark.slow
def test_the_readme_annotation_loop(repo, studio, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from datasets import load_from_disk

    from pipelines.models import rules
    from pipelines.use.predict import weights_version

    dest, env = repo
    backend, first_push, connect_backend, pull_cmd, repro, second_push = readme_loop()
    port = str(srv.free_port())
    url = f"http://127.0.0.1:{port}"

    def argv(line: str) -> list[str]:
        return shlex.split(line.replace(README_PORT, port))

    def models_version() -> str:
        return weights_version(dest / "models" / "tagger", dest / "models" / "stance")

    assert backend.endswith("&") and backend.startswith("claimtrace studio backend")
    log = (tmp_path / "backend.log").open("w")
    proc = subprocess.Popen(
        argv(backend.rstrip("&")), cwd=dest, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        v1 = wait_for_version(url, timeout=300)
        assert v1 == models_version()

        out = run(argv(first_push), dest, env)
        assert env["LABEL_STUDIO_API_KEY"] not in out
        client = connect(studio.url, studio.token)
        pid = find_project(client, "claimtrace")
        tasks = sorted(existing_tasks(client, pid), key=lambda t: t["id"])
        by_file = {t["data"]["origin"].removeprefix("file:"): t for t in tasks}
        assert set(ARTICLES) <= set(by_file)
        assert all(t["model_versions"] == {v1} for t in tasks)
        doubts = [t["data"].get("uncertainty") for t in tasks]
        scored = [d for d in doubts if d is not None]
        assert doubts == scored + [None] * (len(doubts) - len(scored))  # unscored ones last
        assert scored == sorted(scored, reverse=True)  # most uncertain first
        assert client.projects.get(pid).maximum_annotations == 2

        assert "Connected" in run(argv(connect_backend), dest, env)
        (ml,) = client.ml.list(project=pid)
        assert (ml.url, ml.model_version, ml.state) == (url, v1, "CO")

        # two annotators, through the API; the second one leaves out a claim
        email = "second-annotator@example.com"
        second = client.users.create(email=email, username="second", password="x" * 12)
        annotated = {}
        for name in ARTICLES:
            task = by_file[name]
            article = Article(id=task["data"]["article_id"], text=task["data"]["text"])
            ann = rules.annotate(article)
            assert ann.relations, f"{name}: the rules find no attribution to annotate"
            client.annotations.create(id=task["id"], result=annotation_to_result(article.text, ann))
            # maximum_annotations=2: one annotation leaves the task in the labeling stream
            assert client.tasks.get(str(task["id"])).is_labeled is False
            client.annotations.create(
                id=task["id"],
                result=annotation_to_result(article.text, _second_opinion(ann)),
                completed_by=second.id,
            )
            assert client.tasks.get(str(task["id"])).is_labeled is True
            annotated[task["id"]] = article.id
        before = {tid: _annotations(client, tid) for tid in annotated}

        run(argv(pull_cmd), dest, env)
        assert (dest / "data" / "annotations" / "export.dvc").exists()
        agreement = {tid: client.tasks.get(str(tid)).data.get("agreement") for tid in annotated}
        assert all(isinstance(a, float) and 0 < a <= 1 for a in agreement.values()), agreement
        assert any(a < 1 for a in agreement.values())  # a claim left out somewhere

        out = run(argv(repro), dest, env)
        assert {"build_dataset", "train_stance", "train_tagger"} <= stages_run(out)
        assert not {"fetch", "convert"} & stages_run(out)
        tagger = load_from_disk(str(dest / "data" / "datasets" / "tagger"))
        splits = {
            name: {r["group"] for r in split if r["subset"] == "annotations"}
            for name, split in tagger.items()
        }
        trained = splits["train"] | splits["validation"]
        tested = splits["test_annotations"] | splits["test_annotations_other_annotators"]
        assert trained | tested == set(annotated.values())
        assert trained and not trained & tested  # trained on, and split by article
        annotators = {
            r["annotator"] for s in tagger.values() for r in s if r["subset"] == "annotations"
        }
        assert annotators <= {studio.username, email}  # gold, by the people who annotated

        v2 = models_version()
        assert v2 != v1
        assert wait_for_version(url, v2, timeout=300) == v2  # the backend reloaded by itself

        out = run(argv(second_push), dest, env)
        tasks = existing_tasks(client, pid)
        assert all(t["model_versions"] == {v1, v2} for t in tasks)  # beside, not instead
        assert {tid: _annotations(client, tid) for tid in annotated} == before

        # Label Studio takes the new version from the backend, and a task opened without
        # predictions gets one of it
        (ml,) = client.ml.list(project=pid)
        assert ml.model_version == v2
        extra = Article.from_text(
            "The mayor said the bridge would reopen on Monday, according to a statement."
        )
        client.projects.import_tasks(pid, request=[article_to_task(extra)])
        (new,) = [t for t in existing_tasks(client, pid) if t["data"]["article_id"] == extra.id]
        assert new["model_versions"] == set()
        opened = httpx.get(
            f"{studio.url}/api/tasks/{new['id']}",
            params={"project": pid},
            headers={"Authorization": f"Token {studio.token}"},
            timeout=120,
        ).json()
        assert [p["model_version"] for p in opened["predictions"]] == [v2]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


# --- push and the backend without training ---------------------------------------------------


def dm_order(studio, project_id: int, ordering: str) -> list[int]:  # type: ignore[no-untyped-def]
    """Task ids in the order of a Data Manager view sorted by ``ordering`` (as the UI's Order by)."""
    headers = {"Authorization": f"Token {studio.token}"}
    view = httpx.post(
        f"{studio.url}/api/dm/views",
        headers=headers,
        json={"project": project_id, "data": {"ordering": [ordering]}},
        timeout=30,
    )
    assert view.status_code == 201, view.text
    page = httpx.get(
        f"{studio.url}/api/tasks",
        headers=headers,
        params={"view": view.json()["id"], "project": project_id, "fields": "task_only"},
        timeout=30,
    )
    return [t["id"] for t in page.json()["tasks"]]


@dataclass
class ScoringPredictor:
    """A real predictor whose confidence is set per article (the first word's span score)."""

    confidence: dict[str, float]
    name: str = "scoring"
    version: str = "1"

    def annotate(self, article: Article) -> AnnotationSet:
        text = article.text
        first = text.split()[0]
        claim = text[len(first) + 1 :].rstrip(".")
        score = self.confidence[article.id]
        spans = (
            Span("s", "Source", 0, len(first), first, score=score),
            Span("c", "Claim", len(first) + 1, len(first) + 1 + len(claim), claim, score=0.99),
        )
        return AnnotationSet(
            self.name,
            "prediction",
            spans=spans,
            relations=(Relation("s", "c", "asserts", score=0.99),),
            model_version=f"{self.name}-{self.version}",
        )


def test_push_puts_uncertain_tasks_first_and_adds_new_versions_beside_old(studio, request):  # type: ignore[no-untyped-def]
    client = connect(studio.url, studio.token)
    project = request.node.name[:40]
    arts = [Article.from_text(f"Officials{i} said the count was {i}.") for i in range(4)]
    confidence = dict(zip((a.id for a in arts), (0.9, 0.4, 0.7, 0.55), strict=True))
    first = push(client, arts, project, ScoringPredictor(confidence), progress=False, annotators=3)
    assert first["imported"] == 4 and first["predictions_attached"] == 0
    pid = first["project_id"]
    assert client.projects.get(pid).maximum_annotations == 3
    tasks = sorted(existing_tasks(client, pid), key=lambda t: t["id"])
    assert [t["data"]["uncertainty"] for t in tasks] == [0.6, 0.45, 0.3, 0.1]

    # the Data Manager sorts by the field (here least uncertain first)
    assert dm_order(studio, pid, "tasks:data.uncertainty") == [t["id"] for t in reversed(tasks)]

    task = tasks[0]
    ann_result = annotation_to_result(task["data"]["text"], ScoringPredictor(confidence).annotate(
        Article(id=task["data"]["article_id"], text=task["data"]["text"])
    ))  # fmt: skip
    client.annotations.create(id=task["id"], result=ann_result)

    again = push(client, arts, project, ScoringPredictor(confidence), progress=False)
    assert again["imported"] == 0 and again["predictions_attached"] == 0  # this version is there

    newer = ScoringPredictor({a.id: 0.95 for a in arts}, version="2")
    third = push(client, arts, project, newer, progress=False)
    assert third["imported"] == 0 and third["predictions_attached"] == 4
    tasks = sorted(existing_tasks(client, pid), key=lambda t: t["id"])
    assert all(t["model_versions"] == {"scoring-1", "scoring-2"} for t in tasks)
    assert {t["data"]["uncertainty"] for t in tasks} == {0.05}
    assert [len(client.predictions.list(task=t["id"])) for t in tasks] == [2, 2, 2, 2]
    (kept,) = client.annotations.list(id=task["id"])
    assert kept.result == ann_result


def test_pull_writes_agreement_into_task_data_only(studio, request):  # type: ignore[no-untyped-def]
    client = connect(studio.url, studio.token)
    project = request.node.name[:40]
    art = Article.from_text("Officials said the talks had stalled.")
    push(client, [art], project, None, progress=False)
    (task,) = existing_tasks(client, find_project(client, project))
    ann = ScoringPredictor({art.id: 0.5}).annotate(art)
    other = f"{project[:20]}@example.com"
    user = client.users.create(email=other, username=other.split("@")[0], password="x" * 12)
    client.annotations.create(id=task["id"], result=annotation_to_result(art.text, ann))
    half = replace(ann, spans=ann.spans[:1], relations=())
    client.annotations.create(
        id=task["id"], result=annotation_to_result(art.text, half), completed_by=user.id
    )
    before = _annotations(client, task["id"])
    result = pull(client, project)
    assert list(result.agreement) == [task["id"]] and 0 < result.agreement[task["id"]] < 1
    assert write_agreement(client, result.agreement) == 1
    data = client.tasks.get(str(task["id"])).data
    assert data["agreement"] == result.agreement[task["id"]] and data["text"] == art.text
    assert _annotations(client, task["id"]) == before
    assert pull(client, project).agreement == {}  # already written: nothing to change


def test_backend_answers_like_push_and_names_bad_tasks() -> None:
    art = Article.from_text("Officials said the talks had stalled.")
    predictor = ScoringPredictor({art.id: 0.8, "probe": 0.5})
    slot = ModelSlot(load=lambda: predictor)
    slot.reload()
    server = make_server(slot, port=0)
    import threading

    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert httpx.get(f"{url}/health").json()["status"] == "UP"
        assert httpx.post(f"{url}/setup", json={"project": "1.1"}).json() == {
            "model_version": "scoring-1"
        }
        task = article_to_task(art, ((predictor.annotate(art), "scoring-1"),))
        r = httpx.post(
            f"{url}/predict", json={"tasks": [{"id": 7, "data": {**task["data"]}}]}
        ).json()
        (pred,) = r["results"]
        assert pred == task["predictions"][0]  # exactly what push imports
        assert pred["score"] and all("score" in x for x in pred["result"] if x["type"] == "labels")
        assert uncertainty(predictor.annotate(art)) == pytest.approx(0.2)
        bad = httpx.post(f"{url}/predict", json={"tasks": [{"id": 9, "data": {"title": "x"}}]})
        assert bad.status_code == 400 and bad.json()["error"].startswith("task 9: data.text")
        assert (
            httpx.post(f"{url}/webhook", json={"action": "ANNOTATION_CREATED"}).status_code == 200
        )
    finally:
        server.shutdown()
        server.server_close()
