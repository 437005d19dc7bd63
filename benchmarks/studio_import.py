"""Throughput of the Label Studio sync: bulk vs one-task-per-request import, and pull.

Not a test. Starts its own Label Studio in a temporary data dir (or uses --url/--token), then:
push N synthetic articles with predictions in batches, push M more one per request, annotate N
tasks (imported with one annotation each) and pull them. Writes ``benchmarks/results/studio.json``
with the common results header (date, CPU, cores, load; see :mod:`benchmarks.common`).

    .venv/bin/python -m benchmarks.studio_import --n 5000 --single 300
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from benchmarks.common import RESULTS, write_result
from pipelines.core.document import AnnotationSet, Article, Relation, Span
from pipelines.studio import server as srv
from pipelines.studio.sync import connect, ensure_project, pull, push
from pipelines.studio.tasks import annotation_to_result, article_to_task


class SyntheticPredictor:
    """Source = the ministry name, Claim = the clause after "that"; scores make a realistic payload."""

    name = "synthetic"
    version = "1"

    def annotate(self, article: Article) -> AnnotationSet:
        text = article.text
        s0 = text.index("The ministry")
        c0 = text.index("that ") + 5
        spans = (
            Span("s", "Source", s0, s0 + 12, text[s0 : s0 + 12], 0.9),
            Span("c", "Claim", c0, len(text) - 1, text[c0:-1], 0.8),
        )
        return AnnotationSet(
            "synthetic", "prediction", spans, (Relation("s", "c", "asserts", score=0.7),)
        )


def synthetic(n: int, tag: str) -> list[Article]:
    return [
        Article.from_text(
            f"{tag} {i}: The ministry of region {i} said that {i % 97} drones were shot down overnight near the border."
        )
        for i in range(n)
    ]


def main(
    n: Annotated[int, typer.Option(help="Tasks for the bulk import and the pull.")] = 5000,
    single: Annotated[int, typer.Option(help="Tasks imported one per request.")] = 300,
    batch_size: Annotated[int, typer.Option(help="Tasks per bulk request.")] = 500,
    url: Annotated[
        str | None, typer.Option(help="Use this server instead of starting one.")
    ] = None,
    token: Annotated[str | None, typer.Option(help="API key for --url.")] = None,
    out: Annotated[Path, typer.Option(help="Results JSON.")] = RESULTS / "studio.json",
) -> None:
    server = data_dir = None
    results: dict[str, object] = {"n": n, "single": single, "batch_size": batch_size}
    if url is None:
        creds = {
            "LABEL_STUDIO_USERNAME": "bench@example.com",
            "LABEL_STUDIO_PASSWORD": secrets.token_urlsafe(12),
        }
        token = creds["LABEL_STUDIO_USER_TOKEN"] = secrets.token_hex(20)
        data_dir = Path(tempfile.mkdtemp(prefix="studio-bench-"))
        server = srv.start(data_dir, srv.free_port(), creds)
        results["startup_fresh_s"] = round(srv.wait_ready(server, token, timeout=900), 1)
        url = server.url
    try:
        client = connect(url, token or "")
        run = secrets.token_hex(3)
        pred = SyntheticPredictor()

        r = push(client, synthetic(n, f"bulk-{run}"), f"bench-bulk-{run}", pred, batch_size)
        results["bulk"] = {
            "tasks": r["imported"],
            "seconds": r["seconds"],
            "tasks_per_s": round(r["imported"] / r["seconds"], 1),
        }
        t0 = time.perf_counter()
        again = push(
            client,
            synthetic(n, f"bulk-{run}"),
            f"bench-bulk-{run}",
            pred,
            batch_size,
            progress=False,
        )
        results["bulk_rerun_noop"] = {
            "imported": again["imported"],
            "seconds": round(time.perf_counter() - t0, 2),
        }

        r = push(
            client, synthetic(single, f"single-{run}"), f"bench-single-{run}", pred, batch_size=1
        )
        results["one_per_request"] = {
            "tasks": r["imported"], "seconds": r["seconds"], "tasks_per_s": round(r["imported"] / r["seconds"], 1)
        }  # fmt: skip

        # pull: N tasks that each carry one submitted annotation (imported with the tasks)
        project_id, _ = ensure_project(client, f"bench-pull-{run}")
        arts = synthetic(n, f"pull-{run}")
        for i in range(0, n, batch_size):
            tasks = []
            for a in arts[i : i + batch_size]:
                task = article_to_task(a)
                task["annotations"] = [{"result": annotation_to_result(a.text, pred.annotate(a))}]
                tasks.append(task)
            client.projects.import_tasks(
                project_id, request=tasks, request_options={"timeout": 300, "max_retries": 0}
            )
        t0 = time.perf_counter()
        pulled = pull(client, f"bench-pull-{run}")
        seconds = time.perf_counter() - t0
        assert not pulled.errors, pulled.errors[:3]
        results["pull"] = {
            "tasks": len(pulled.documents), "annotations": pulled.stats.counts["annotations"],
            "seconds": round(seconds, 2), "tasks_per_s": round(len(pulled.documents) / seconds, 1),
        }  # fmt: skip
    finally:
        if server is not None:
            server.stop()
        if data_dir is not None:
            shutil.rmtree(data_dir)
    rows = [
        {"measure": k, **v} for k, v in results.items() if isinstance(v, dict)
    ]  # bulk, bulk_rerun_noop, one_per_request, pull
    summary = {k: v for k, v in results.items() if not isinstance(v, dict)}
    for row in rows:
        print(row)
    write_result(
        "studio",
        rows,
        summary,
        notes="a fresh Label Studio in a temporary data dir (startup_fresh_s: its migrations); "
        "synthetic articles with predictions; pull: tasks imported with one annotation each",
        path=out,
        with_torch=False,
    )


if __name__ == "__main__":
    typer.run(main)
