"""Label Studio ML backend: the trained models pre-annotate a task when an annotator opens it.

Label Studio's documented ML backend API over plain HTTP on 127.0.0.1 (the ``label-studio-ml``
package's last PyPI release, 1.0.9, predates the pinned Label Studio, and it would add Flask,
gunicorn and rq for four JSON endpoints):

* ``GET /health`` -> ``{"status": "UP", "model_class", "model_version"}``
* ``POST /setup`` (Label Studio checks the backend and asks its version) -> ``{"model_version"}``
* ``POST /predict`` ``{"tasks": [{"id", "data": {"text"}}]}`` -> ``{"results": [{"result",
  "score", "model_version"}]}``, one per task, in exactly the format ``studio push`` imports
  (:func:`pipelines.studio.sync.predict` + :func:`pipelines.studio.tasks.prediction_json`)
* ``POST /webhook`` -> ``{"status": "ok"}``: events are acknowledged; retraining is ``dvc repro``.
* ``GET /versions`` -> ``{"versions": [model_version]}`` (the project's model version menu).

The predictor is built by the caller's ``load`` function when the server starts (never at import)
and rebuilt when the model folders change (a new ``dvc repro``): a watcher thread compares the
folders' file sizes and times, waits until they have stopped changing, and swaps the new model in
while the old one keeps answering. A load that fails keeps the old model and is logged.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pipelines.core.document import Article
from pipelines.studio.server import StudioError
from pipelines.studio.sync import Predictor, predict
from pipelines.studio.tasks import prediction_json

log = logging.getLogger("claimtrace.backend")

MAX_BODY = 64 * 1024 * 1024  # a /predict batch of long articles, not an upload
WATCH_SECONDS = 1.0
MODEL_CLASS = "claimtrace"
PROBE = Article(id="probe", text="Officials said the talks had stalled, according to a statement.")

Stamp = tuple[tuple[str, int, int], ...]


def files_stamp(folders: Sequence[Path]) -> Stamp:
    """Name, size and mtime of every file under ``folders``: cheap to take every second, and it
    changes whenever ``dvc repro`` (or a checkout) writes new weights."""
    entries = []
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    st = path.stat()
                    entries.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(entries)


@dataclass
class ModelSlot:
    """The predictor the backend serves, and what it was loaded from."""

    load: Callable[[], Predictor]
    watch: Sequence[Path] = ()
    predictor: Predictor | None = None
    model_version: str | None = None
    stamp: Stamp = ()
    lock: threading.Lock = field(default_factory=threading.Lock)  # one prediction at a time
    stop: threading.Event = field(default_factory=threading.Event)

    def reload(self) -> str:
        """(Re)build the predictor; the old one answers until the new one is ready."""
        stamp = files_stamp(self.watch)
        predictor = self.load()
        # the version its predictions carry, read off a real one (what /setup must announce)
        _, version = predict(predictor, PROBE)
        with self.lock:
            self.predictor, self.model_version, self.stamp = predictor, version, stamp
        return version

    @property
    def version(self) -> str:
        if self.model_version is None:
            raise StudioError("the backend has no model loaded yet")
        return self.model_version

    def watch_forever(self, every: float = WATCH_SECONDS) -> None:
        """Reload once the watched files differ from the loaded ones and are the same twice in
        a row (a training run still writing is not picked up half-way)."""
        seen = self.stamp
        while not self.stop.wait(every):
            now = files_stamp(self.watch)
            if now != self.stamp and now == seen:
                try:
                    log.warning("model files changed: reloading")
                    log.warning("now serving model_version %s", self.reload())
                except (StudioError, OSError, ValueError, RuntimeError) as e:
                    self.stamp = now  # retried when the files change again
                    log.error("reload failed, still serving %s: %s", self.version, e)
            seen = now

    def predict_tasks(self, tasks: Any) -> list[dict[str, Any]]:
        """One Label Studio prediction per task; a malformed task is a StudioError naming it."""
        if not isinstance(tasks, list):
            raise StudioError("'tasks' must be a list of {id, data: {text}} objects")
        articles = [task_input(task, i) for i, task in enumerate(tasks)]
        with self.lock:
            predictor = self.predictor
            if predictor is None:
                raise StudioError("the backend has no model loaded yet")
            results = []
            for article in articles:
                ann, version = predict(predictor, article)
                results.append(prediction_json(article.text, ann, version))
        return results


def task_input(task: Any, index: int) -> Article:
    """The article of one ``/predict`` task (pure): its text, and its id for messages."""
    if not isinstance(task, dict):
        raise StudioError(f"task #{index}: expected an object with 'id' and 'data'")
    where = f"task {task.get('id', '#' + str(index))}"
    data = task.get("data")
    text = data.get("text") if isinstance(data, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise StudioError(
            f"{where}: data.text is missing or empty; the labeling config reads $text"
        )
    article_id = data.get("article_id") if isinstance(data.get("article_id"), str) else None
    return Article(id=article_id or f"task-{task.get('id', index)}", text=text)


def handler(slot: ModelSlot) -> type[BaseHTTPRequestHandler]:
    """The request handler class serving ``slot``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "claimtrace-ml-backend"

        def log_message(self, format: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), format % args)

        def _send(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise StudioError(f"request body of {length} bytes is over {MAX_BODY}")
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise StudioError(f"request body is not JSON: {e}") from e
            if not isinstance(body, dict):
                raise StudioError("request body must be a JSON object")
            return body

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path in ("", "/health"):
                self._send(
                    HTTPStatus.OK,
                    {"status": "UP", "model_class": MODEL_CLASS, "model_version": slot.version},
                )
            elif path == "/versions":
                self._send(HTTPStatus.OK, {"versions": [slot.version]})
            else:
                self._send(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: GET {path}"})

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            try:
                body = self._body()
                if path == "/predict":
                    results = slot.predict_tasks(body.get("tasks"))
                    self._send(HTTPStatus.OK, {"results": results, "model_version": slot.version})
                elif path == "/setup":
                    self._send(HTTPStatus.OK, {"model_version": slot.version})
                elif path == "/webhook":
                    self._send(HTTPStatus.OK, {"status": "ok"})
                else:
                    self._send(HTTPStatus.NOT_FOUND, {"error": f"no such endpoint: POST {path}"})
            except StudioError as e:
                log.error("POST %s: %s", path, e)
                self._send(HTTPStatus.BAD_REQUEST, {"error": str(e)})

    return Handler


def make_server(slot: ModelSlot, port: int) -> ThreadingHTTPServer:
    """The HTTP server on 127.0.0.1 (``port`` 0: any free one); the caller runs ``serve_forever``."""
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), handler(slot))
    except OSError as e:
        raise StudioError(f"cannot listen on 127.0.0.1:{port} ({e}); pick another --port") from e
    server.daemon_threads = True
    return server


def serve(slot: ModelSlot, port: int, ready: Callable[[str], None] | None = None) -> None:
    """Load the model, then answer Label Studio until interrupted; the model folders are watched."""
    server = make_server(slot, port)  # a busy port fails before the model is loaded
    try:
        slot.reload()
    except BaseException:
        server.server_close()
        raise
    url = f"http://127.0.0.1:{server.server_address[1]}"
    watcher = threading.Thread(target=slot.watch_forever, name="model-watch", daemon=True)
    watcher.start()
    if ready is not None:
        ready(url)
    try:
        server.serve_forever()
    finally:
        slot.stop.set()
        server.server_close()
