"""Sync the corpus with a Label Studio project: ``push`` articles (+ predictions), ``pull`` annotations.

Push is idempotent and crash-safe: tasks carry ``article_id`` + ``content_hash``; the existing
tasks are listed once and only missing ones are imported, in batches of one request each (Label
Studio imports a batch in one database transaction, so a batch is all there or not at all).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import httpx

from pipelines.core.document import AnnotationSet, Article, Document, DocumentError, validate
from pipelines.studio import labeling
from pipelines.studio.server import StudioError, mask
from pipelines.studio.tasks import PullStats, article_to_task, content_hash, task_to_document

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

DEFAULT_PROJECT = "claimtrace"
BATCH_SIZE = 500
TIMEOUT_S = 10.0  # metadata calls: fail fast when the server is down or wrong
IMPORT_TIMEOUT_S = 300.0  # one batch import / the full export
T = TypeVar("T")


# --- predictors --------------------------------------------------------------------------------


class Predictor(Protocol):
    """Anything that pre-annotates an article (rules, a model); its AnnotationSet becomes an LS prediction."""

    name: str
    version: str

    def annotate(self, article: Article) -> AnnotationSet: ...


@dataclass(frozen=True)
class FunctionPredictor:
    """A predictor made of a plain ``annotate(article) -> AnnotationSet`` function (the rules)."""

    name: str
    version: str
    annotate: Callable[[Article], AnnotationSet]


# --- connection --------------------------------------------------------------------------------


def connect(url: str, api_key: str, timeout: float = TIMEOUT_S) -> LabelStudio:
    """An SDK client, after checking the server answers and accepts the key (clear error in seconds).

    The SDK sends a JWT personal access token as ``Bearer`` (refreshing it) and anything else as a
    legacy ``Token``.
    """
    from label_studio_sdk import LabelStudio
    from label_studio_sdk.core.api_error import ApiError

    try:
        health = httpx.get(f"{url}/health", timeout=timeout)
    except httpx.TransportError as e:
        raise StudioError(
            f"cannot reach Label Studio at {url} ({type(e).__name__}: {e}); is it running (`claimtrace studio status`)? "
            "is LABEL_STUDIO_URL right?"
        ) from e
    if health.status_code != 200 or "UP" not in health.text:
        raise StudioError(
            f"{url}/health answered HTTP {health.status_code}: not a Label Studio server? check LABEL_STUDIO_URL"
        )
    try:
        # a JWT key is checked (expiry) and exchanged for an access token here
        client = LabelStudio(base_url=url, api_key=api_key, timeout=timeout)
        client.users.whoami()
    except (ApiError, httpx.HTTPError) as e:
        status = getattr(e, "status_code", None)
        if status in (401, 403):
            raise StudioError(
                f"Label Studio at {url} rejected the API key {mask(api_key)} (HTTP {status}): check LABEL_STUDIO_API_KEY "
                "(Account & Settings). A legacy token also needs 'legacy tokens' enabled in Organization > API Tokens "
                "settings; a personal access token works without it"
            ) from e
        raise StudioError(f"Label Studio at {url} failed an authenticated call: {e}") from e
    return client


def _call(what: str, fn: Callable[[], T]) -> T:
    """Run one API call; HTTP and transport failures become a StudioError naming the step."""
    from label_studio_sdk.core.api_error import ApiError

    try:
        return fn()
    except ApiError as e:
        raise StudioError(
            f"{what}: Label Studio answered HTTP {e.status_code}: {str(e.body)[:500]}"
        ) from e
    except httpx.TransportError as e:
        raise StudioError(
            f"{what}: lost the connection to Label Studio ({type(e).__name__}: {e}); "
            "check the server (`claimtrace studio status`) and rerun: push/pull are safe to repeat"
        ) from e


# --- project -----------------------------------------------------------------------------------


def ensure_project(client: LabelStudio, title: str) -> tuple[int, bool]:
    """Project id by title (created with our config and instructions, or updated to them)."""
    found = [
        p
        for p in _call("listing projects", lambda: list(client.projects.list(title=title)))
        if p.title == title
    ]
    if len(found) > 1:
        raise StudioError(
            f"{len(found)} projects are titled {title!r} (ids {[p.id for p in found]}); rename all but one"
        )
    wanted = {
        "label_config": labeling.label_config(),
        "expert_instruction": labeling.INSTRUCTIONS,
        "show_instruction": True,
    }
    if not found:
        project = _call(
            "creating the project", lambda: client.projects.create(title=title, **wanted)
        )
        return project.id, True
    project = found[0]
    current = _call("reading the project", lambda: client.projects.get(project.id))
    if any(getattr(current, k) != v for k, v in wanted.items()):
        _call("updating the project", lambda: client.projects.update(project.id, **wanted))
    return project.id, False


def find_project(client: LabelStudio, title: str) -> int:
    found = [
        p
        for p in _call("listing projects", lambda: list(client.projects.list(title=title)))
        if p.title == title
    ]
    if len(found) != 1:
        raise StudioError(
            f"expected one project titled {title!r}, found {len(found)}; check --project"
        )
    return found[0].id


def existing_tasks(client: LabelStudio, project_id: int) -> list[dict[str, Any]]:
    """Every task's id and data, listed once (paged; ``include`` halves the server's work)."""
    pager = client.tasks.list(
        project=project_id, fields="task_only", include="id,data", page_size=1000
    )
    return _call("listing tasks", lambda: [{"id": t.id, "data": t.data or {}} for t in pager])


# --- push --------------------------------------------------------------------------------------


@dataclass
class PushPlan:
    """What push will do: articles to import, and old tasks whose article text has changed."""

    new: list[Article] = field(default_factory=list)
    changed: list[Article] = field(default_factory=list)
    stale_tasks: dict[int, str] = field(default_factory=dict)  # old task id -> new content hash
    unchanged: int = 0
    duplicates_in_input: int = 0


def plan_push(articles: Iterable[Article], tasks: Sequence[dict[str, Any]]) -> PushPlan:
    """Decide what to import, from the task data alone (pure)."""
    known: set[str] = set()
    live: dict[str, dict[int, str]] = defaultdict(
        dict
    )  # article id -> {task id: content hash}, stale ones left out
    for task in tasks:
        data = task["data"]
        if "article_id" not in data:
            continue
        known.add(data["article_id"])
        if not data.get("stale"):
            live[data["article_id"]][task["id"]] = data.get("content_hash", "")
    plan = PushPlan()
    seen: set[tuple[str, str]] = set()
    for article in articles:
        key = (article.id, content_hash(article.text))
        if key in seen:
            plan.duplicates_in_input += 1
            continue
        seen.add(key)
        if key[1] in live[article.id].values():
            plan.unchanged += 1
        elif article.id in known:
            plan.changed.append(article)
            for task_id, old_hash in live[article.id].items():
                if old_hash != key[1]:
                    plan.stale_tasks[task_id] = key[1]
        else:
            plan.new.append(article)
    return plan


def batches(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def push(
    client: LabelStudio,
    articles: Iterable[Article],
    project: str = DEFAULT_PROJECT,
    predictor: Predictor | None = None,
    batch_size: int = BATCH_SIZE,
    progress: bool = True,
) -> dict[str, Any]:
    """Import the articles not yet in the project; returns counts for the report."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    project_id, created = ensure_project(client, project)
    plan = plan_push(articles, existing_tasks(client, project_id))
    todo = plan.new + plan.changed
    imported = predictions = 0
    bar = tqdm(total=len(todo), desc="push", unit="task", disable=not progress)
    for batch in batches(todo, batch_size):
        tasks = []
        for article in batch:
            preds = ()
            if predictor is not None:
                ann = predictor.annotate(article)
                try:
                    validate(Document(article, (ann,)))
                except DocumentError as e:
                    raise StudioError(
                        f"predictor {predictor.name!r} produced an invalid annotation: {e}"
                    ) from e
                preds = ((ann, ann.model_version or f"{predictor.name}-{predictor.version}"),)
                predictions += 1
            tasks.append(article_to_task(article, preds))
        response = _call(
            f"importing tasks {imported + 1}-{imported + len(batch)} of {len(todo)}",
            lambda tasks=tasks: client.projects.import_tasks(  # type: ignore[misc]
                project_id,
                request=tasks,
                return_task_ids=True,
                # no automatic retry: a retried import that had landed would duplicate tasks;
                # rerunning push is the retry, and it only imports what is missing
                request_options={"timeout": IMPORT_TIMEOUT_S, "max_retries": 0},
            ),
        )
        if response.task_count is not None and response.task_count != len(
            batch
        ):  # None: async (Enterprise)
            raise StudioError(
                f"Label Studio imported {response.task_count} of {len(batch)} tasks; rerun push"
            )
        imported += len(batch)
        bar.update(len(batch))
    bar.close()
    for task_id, new_hash in plan.stale_tasks.items():
        # keep the old task and its annotations; mark it so annotators skip it and pull sets it apart
        tid = str(task_id)
        task = _call("reading a changed task", lambda tid=tid: client.tasks.get(tid))  # type: ignore[misc]
        data = {
            **(task.data or {}),
            "stale": f"article text changed; superseded by content_hash {new_hash}",
        }
        _call(
            "flagging a changed task",
            lambda tid=tid, data=data: client.tasks.update(tid, data=data),
        )  # type: ignore[misc]
    return {
        "project_id": project_id,
        "project_created": created,
        "imported": imported,
        "unchanged": plan.unchanged,
        "changed_articles": len(plan.changed),
        "stale_tasks_flagged": len(plan.stale_tasks),
        "duplicates_in_input": plan.duplicates_in_input,
        "predictions": predictions,
        "seconds": round(time.perf_counter() - t0, 2),
    }


# --- pull --------------------------------------------------------------------------------------


@dataclass
class PullResult:
    documents: list[Document]
    stale: list[Document]
    stats: PullStats
    errors: list[str]


def export_tasks(client: LabelStudio, project_id: int) -> list[dict[str, Any]]:
    """The full JSON export (annotations with relations, drafts, cancelled ones), all tasks."""
    import json

    chunks = _call(
        "exporting the project",
        lambda: b"".join(
            client.projects.exports.download_sync(
                project_id,
                export_type="JSON",
                download_all_tasks=True,
                request_options={"timeout": IMPORT_TIMEOUT_S},
            )
        ),
    )
    return json.loads(chunks)


def user_emails(client: LabelStudio) -> dict[int, str]:
    return _call("listing users", lambda: {u.id: u.email for u in client.users.list() if u.email})


def tasks_to_documents(tasks: Iterable[dict[str, Any]], users: dict[int, str]) -> PullResult:
    """Exported tasks -> one Document per article (pure).

    Tasks of the same article and text are merged; tasks flagged stale (text changed since) are
    returned apart. Every conversion error is collected, none is skipped.
    """
    stats = PullStats()
    merged: dict[str, Document] = {}
    stale: list[Document] = []
    errors: list[str] = []
    for task in tasks:
        stats.counts["tasks"] += 1
        try:
            doc = task_to_document(task, users, stats)
        except DocumentError as e:
            errors.append(str(e))
            continue
        if not doc.annotations:
            stats.counts["tasks_without_annotations"] += 1
            continue
        if (task.get("data") or {}).get("stale"):
            stats.counts["stale_tasks_with_annotations"] += 1
            stale.append(doc)
            continue
        prev = merged.get(doc.article.id)
        if prev is not None and prev.article.text != doc.article.text:
            errors.append(
                f"document {doc.article.id!r}: task {task.get('id')} has a different text than another live task "
                "of the same article; mark the outdated one stale (push does this) and pull again"
            )
            continue
        merged[doc.article.id] = Document(
            doc.article, (prev.annotations if prev else ()) + doc.annotations
        )
    stats.counts["documents"] = len(merged)
    return PullResult(list(merged.values()), stale, stats, errors)


def pull(client: LabelStudio, project: str = DEFAULT_PROJECT) -> PullResult:
    project_id = find_project(client, project)
    return tasks_to_documents(export_tasks(client, project_id), user_emails(client))
