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
from pipelines.studio.tasks import (
    AGREEMENT_KEY,
    UNCERTAINTY_KEY,
    PullStats,
    article_to_task,
    content_hash,
    prediction_json,
    task_article,
    task_to_document,
    uncertainty,
)

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


def predict(predictor: Predictor, article: Article) -> tuple[AnnotationSet, str]:
    """The predictor's checked annotation of ``article`` and the ``model_version`` it is stored
    under (push and the ML backend share it, so both give Label Studio the same predictions)."""
    ann = predictor.annotate(article)
    try:
        validate(Document(article, (ann,)))
    except DocumentError as e:
        raise StudioError(
            f"predictor {predictor.name!r} produced an invalid annotation: {e}"
        ) from e
    return ann, ann.model_version or f"{predictor.name}-{predictor.version}"


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


def ensure_project(
    client: LabelStudio, title: str, annotators: int | None = None
) -> tuple[int, bool]:
    """Project id by title (created with our config and instructions, or updated to them).

    ``annotators``: how many people annotate each task (the project's ``maximum_annotations``;
    None leaves it as it is): a task leaves the labeling stream once that many have submitted.
    """
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
    if annotators is not None:
        if annotators < 1:
            raise StudioError(f"--annotators must be 1 or more, got {annotators}")
        wanted["maximum_annotations"] = annotators
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
    """Every task's id, data and the model versions of its predictions, listed once (paged;
    ``include`` halves the server's work)."""
    pager = client.tasks.list(
        project=project_id,
        fields="all",
        include="id,data,predictions_model_versions",
        page_size=1000,
    )
    return _call(
        "listing tasks",
        lambda: [
            {
                "id": t.id,
                "data": t.data or {},
                "model_versions": _versions(getattr(t, "predictions_model_versions", None)),
            }
            for t in pager
        ],
    )


def _versions(value: Any) -> set[str]:
    """The Data Manager's ``predictions_model_versions`` (a list, or a comma-joined string)."""
    if not value:
        return set()
    items = value if isinstance(value, list) else str(value).split(",")
    return {str(v).strip() for v in items if str(v).strip()}


def connect_ml_backend(client: LabelStudio, project: str, url: str, title: str) -> dict[str, Any]:
    """Connect ``project`` to the ML backend at ``url`` once (Label Studio's ``/api/ml``), with
    ``auto_update`` so a retrained model's version is taken up on its next ``/setup``.

    Label Studio checks the backend (``/health``, ``/setup``) before saving the connection and
    then asks it for predictions whenever a task without any is opened.
    """
    project_id = find_project(client, project)
    known = _call("listing ML backends", lambda: list(client.ml.list(project=project_id)))
    same = [b for b in known if (b.url or "").rstrip("/") == url.rstrip("/")]
    if same:
        backend = same[0]
        _call("checking the ML backend", lambda: client.ml.update(backend.id, url=backend.url))
        backend = _call("reading the ML backend", lambda: client.ml.get(backend.id))
    else:
        backend = _call(
            f"connecting the ML backend at {url} (is `claimtrace studio backend` running?)",
            lambda: client.ml.create(
                url=url, project=project_id, title=title, is_interactive=False, auto_update=True
            ),
        )
    state = backend.readable_state or str(backend.state)
    if backend.state != "CO":
        raise StudioError(
            f"Label Studio reaches the ML backend at {url} but it is {state}: "
            f"{backend.error_message or 'no error message'}; check the `claimtrace studio backend` log"
        )
    return {
        "id": backend.id,
        "state": state,
        "model_version": backend.model_version,
        "created": not same,
    }


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
    annotators: int | None = None,
) -> dict[str, Any]:
    """Import the articles not yet in the project; returns counts for the report.

    With a predictor, new tasks are imported most uncertain first (``data.uncertainty``, also a
    Data Manager column to sort by), and live tasks that have no prediction of this model
    version get one beside their older ones: predictions are added, never replaced.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    project_id, created = ensure_project(client, project, annotators)
    tasks = existing_tasks(client, project_id)
    articles = list(articles)
    plan = plan_push(articles, tasks)
    todo = plan.new + plan.changed
    preds: dict[tuple[str, str], tuple[AnnotationSet, str]] = {}
    if predictor is not None:
        for article in tqdm(todo, desc="predict", unit="article", disable=not progress):
            preds[(article.id, article.version)] = predict(predictor, article)
        # most uncertain first: Label Studio serves tasks in id order; unscored ones keep theirs
        todo.sort(key=lambda a: -(uncertainty(preds[(a.id, a.version)][0]) or -1.0))
    imported = 0
    bar = tqdm(total=len(todo), desc="push", unit="task", disable=not progress)
    for batch in batches(todo, batch_size):
        tasks_json = []
        for article in batch:
            pred = preds.get((article.id, article.version))
            task = article_to_task(article, (pred,) if pred else ())
            doubt = uncertainty(pred[0]) if pred else None
            if doubt is not None:
                task["data"][UNCERTAINTY_KEY] = doubt
            tasks_json.append(task)
        response = _call(
            f"importing tasks {imported + 1}-{imported + len(batch)} of {len(todo)}",
            lambda tasks_json=tasks_json: client.projects.import_tasks(  # type: ignore[misc]
                project_id,
                request=tasks_json,
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
    attached = attach_predictions(client, predictor, tasks, articles, progress) if predictor else 0
    for task_id, new_hash in plan.stale_tasks.items():
        # keep the old task and its annotations; mark it so annotators skip it and pull sets it apart
        stale = f"article text changed; superseded by content_hash {new_hash}"
        update_task_data(client, task_id, {"stale": stale})
    return {
        "project_id": project_id,
        "project_created": created,
        "imported": imported,
        "unchanged": plan.unchanged,
        "changed_articles": len(plan.changed),
        "stale_tasks_flagged": len(plan.stale_tasks),
        "duplicates_in_input": plan.duplicates_in_input,
        "predictions": len(preds) + attached,
        "predictions_attached": attached,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def tasks_to_predict(
    tasks: Sequence[dict[str, Any]], articles: Iterable[Article], predictor: Predictor
) -> list[dict[str, Any]]:
    """Live tasks of ``articles`` (same text) without a prediction of ``predictor``'s version (pure).

    A predictor stores its predictions as its own ``version`` (the models' weights digest) or
    as ``name-version`` (rules); either one on a task means it is done.
    """
    wanted = {(a.id, a.version) for a in articles}
    known = {predictor.version, f"{predictor.name}-{predictor.version}"}
    return [
        t
        for t in tasks
        if not t["data"].get("stale")
        and (t["data"].get("article_id"), t["data"].get("content_hash")) in wanted
        and not known & t.get("model_versions", set())
    ]


def attach_predictions(
    client: LabelStudio,
    predictor: Predictor,
    tasks: Sequence[dict[str, Any]],
    articles: Iterable[Article],
    progress: bool = True,
) -> int:
    """Add this predictor's prediction to existing tasks that lack it; the task's annotations and
    older predictions stay. Its uncertainty replaces ``data.uncertainty`` (only that key)."""
    from tqdm import tqdm

    attached = 0
    for task in tqdm(
        tasks_to_predict(tasks, articles, predictor),
        desc="attach",
        unit="task",
        disable=not progress,
    ):
        tid = task["id"]
        try:
            article = task_article(task)
        except DocumentError as e:
            raise StudioError(f"task {tid}: {e}; it cannot be predicted") from e
        ann, version = predict(predictor, article)
        if version in task.get("model_versions", set()):
            continue
        pred = prediction_json(article.text, ann, version)
        _call(
            f"adding a {version} prediction to task {tid}",
            lambda: client.predictions.create(task=tid, **pred),  # noqa: B023
        )
        doubt = uncertainty(ann)
        if doubt is not None and task["data"].get(UNCERTAINTY_KEY) != doubt:
            update_task_data(client, tid, {UNCERTAINTY_KEY: doubt})
        attached += 1
    return attached


def update_task_data(client: LabelStudio, task_id: int, fields: dict[str, Any]) -> None:
    """Set some keys of a task's data (read, merge, PATCH): the other keys, the annotations and
    the predictions are left as they are."""
    tid = str(task_id)
    task = _call(f"reading task {tid}", lambda: client.tasks.get(tid))
    data = {**(task.data or {}), **fields}
    _call(f"updating the data of task {tid}", lambda: client.tasks.update(tid, data=data))


# --- pull --------------------------------------------------------------------------------------


@dataclass
class PullResult:
    documents: list[Document]
    stale: list[Document]
    stats: PullStats
    errors: list[str]
    # task id -> its annotators' agreement, for the tasks whose ``data.agreement`` differs
    agreement: dict[int, float] = field(default_factory=dict)


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
    changed_agreement: dict[int, float] = {}
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
        score = task_agreement(doc)
        data = task.get("data") or {}
        if score is not None and data.get(AGREEMENT_KEY) != score:
            changed_agreement[task["id"]] = score
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
    return PullResult(list(merged.values()), stale, stats, errors, changed_agreement)


def task_agreement(doc: Document) -> float | None:
    """One number per task for the Data Manager: the mean over labels of the annotators' span
    overlap F1 (:mod:`pipelines.studio.agreement`); None with fewer than two annotators."""
    from pipelines.studio.agreement import report

    spans = report([doc])["spans"]["overlap"] if len(doc.annotations) > 1 else {}
    scores = [v for v in spans.values() if v is not None]
    return round(sum(scores) / len(scores), 4) if scores else None


def write_agreement(client: LabelStudio, agreement: dict[int, float]) -> int:
    """Store each task's agreement as ``data.agreement`` (a sortable Data Manager column); only
    the task data changes, never an annotation."""
    for task_id, score in agreement.items():
        update_task_data(client, task_id, {AGREEMENT_KEY: score})
    return len(agreement)


def pull(client: LabelStudio, project: str = DEFAULT_PROJECT) -> PullResult:
    project_id = find_project(client, project)
    return tasks_to_documents(export_tasks(client, project_id), user_emails(client))
