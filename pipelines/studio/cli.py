"""``claimtrace studio``: run a local Label Studio and sync the corpus with it (thin wrappers)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipelines.core.document import read_articles, write_documents
from pipelines.core.io import write_json, write_jsonl
from pipelines.core.params import ParamsError
from pipelines.core.stagelog import stage
from pipelines.studio import server as srv
from pipelines.studio.server import StudioError

if TYPE_CHECKING:
    from pipelines.studio.sync import Predictor

app = typer.Typer(
    help="Label Studio: start a local server, push articles, pull annotations.",
    no_args_is_help=True,
)

DataDir = Annotated[
    Path, typer.Option(help="Label Studio data dir (SQLite, uploads, pidfile, log).")
]
Project = Annotated[str, typer.Option(help="Project title (created if missing).")]


# `push --predictions NAME` choices: name -> a function that builds the predictor (the `model`
# one takes the --tagger/--model folders). Filled in by pipelines.cli (the `claimtrace` command),
# which knows the rule and model code: the studio code never imports it, nor torch.
PREDICTORS: dict[str, Callable[..., Predictor]] = {}
# predictor name -> the folders its model is read from (same --tagger/--model arguments): the ML
# backend watches them and reloads when `dvc repro` writes a new model. Filled in by pipelines.cli.
MODEL_FOLDERS: dict[str, Callable[..., list[Path]]] = {}


def _folders(name: str, tagger: Path | None, model: Path | None) -> dict[str, Path]:
    if name not in PREDICTORS:
        raise StudioError(
            f"unknown predictor {name!r}; choose one of {sorted(PREDICTORS)} or 'none'"
        )
    folders = {k: v for k, v in (("tagger", tagger), ("model", model)) if v is not None}
    if folders and name != "model":
        raise StudioError(f"--{' and --'.join(folders)} go with --predictions model, not {name!r}")
    return folders


def _predictor(name: str, tagger: Path | None = None, model: Path | None = None) -> Predictor:
    folders = _folders(name, tagger, model)
    try:
        return PREDICTORS[name](**folders)
    except ImportError as e:
        raise StudioError(
            f"predictor {name!r} cannot be loaded ({e}); use --predictions none"
        ) from e


def _fail(e: Exception) -> typer.Exit:
    typer.echo(f"error: {e}", err=True)
    return typer.Exit(code=1)


DATABASE_VAR = "CLAIMTRACE_STUDIO_DATABASE"
BACKEND_PORT = 9090  # `studio backend`, and where `studio connect-backend` looks for it


@app.command()
def up(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = srv.DEFAULT_PORT,
    data_dir: DataDir = srv.DEFAULT_DATA_DIR,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for the API (first start runs migrations).")
    ] = 300,
    database: Annotated[
        str | None,
        typer.Option(
            help=f"A team's PostgreSQL database, {srv.DATABASE_URL_FORM} (default: ${DATABASE_VAR} "
            "from the environment or .env, else SQLite in --data-dir). The variable keeps the "
            "password out of `ps` and the shell history.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start Label Studio in the background and wait until its API answers."""
    running = srv.read_pidfile(data_dir)
    if running is not None and running.is_label_studio():
        typer.echo(f"already running: {running.url} (pid {running.pid})")
        return
    try:
        url = database or srv.setting(DATABASE_VAR)
        db = srv.Database.from_url(url) if url else None
        if db is not None:
            db.check()
        creds = srv.ensure_credentials()
        server = srv.start(data_dir, port, creds, database=db)
    except StudioError as e:
        raise _fail(e) from e
    srv.write_pidfile(server)
    try:
        seconds = srv.wait_ready(server, creds["LABEL_STUDIO_USER_TOKEN"], timeout)
    except StudioError as e:
        server.stop()  # leave no half-started server behind
        (data_dir / srv.PIDFILE).unlink(missing_ok=True)
        raise _fail(e) from e
    typer.echo(
        f"Label Studio is up at {server.url} (pid {server.pid}, ready in {seconds:.0f}s, "
        f"database {server.database or 'SQLite in ' + str(data_dir)}); "
        f"log in as {creds['LABEL_STUDIO_USERNAME']} (password in .env), API token {srv.mask(creds['LABEL_STUDIO_USER_TOKEN'])}"
    )


@app.command()
def down(data_dir: DataDir = srv.DEFAULT_DATA_DIR) -> None:
    """Stop the server that `up` started (and only that one)."""
    server = srv.read_pidfile(data_dir)
    if server is None or not server.is_label_studio():
        typer.echo("not running")
    else:
        server.stop()
        typer.echo(f"stopped pid {server.pid}")
    (data_dir / srv.PIDFILE).unlink(missing_ok=True)


@app.command()
def status(data_dir: DataDir = srv.DEFAULT_DATA_DIR) -> None:
    """Say which Label Studio push/pull would use and whether it answers."""
    from pipelines.studio.sync import connect

    local = srv.read_pidfile(data_dir)
    if local is not None:
        typer.echo(
            f"local server: pid {local.pid} {'running' if local.is_label_studio() else 'NOT running (stale pidfile)'} at {local.url}"
            f" (database {local.database or 'SQLite'})"
        )
    try:
        url, key = srv.connection(data_dir)
        client = connect(url, key)
        me = client.users.whoami()
    except StudioError as e:
        raise _fail(e) from e
    typer.echo(f"API OK at {url} as {me.email} (key {srv.mask(key)})")


@app.command()
def push(
    articles: Annotated[Path, typer.Option(help="Articles JSONL (ingest output).")] = Path(
        "data/corpus/articles.jsonl"
    ),
    project: Project = "claimtrace",
    predictions: Annotated[
        str, typer.Option(help="Pre-annotations: rules, model or none.")
    ] = "rules",
    tagger: Annotated[
        Path | None,
        typer.Option(
            help="With --predictions model: span tagger dir (default: params predict.tagger)."
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            help="With --predictions model: stance model dir (default: params predict.model)."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Tasks per import request.")] = 500,
    annotators: Annotated[
        int | None,
        typer.Option(
            help="Annotators per task (the project's maximum_annotations: a task stays in the "
            "labeling stream until that many have submitted). Default: leave it as it is (1 for a new project).",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDir = srv.DEFAULT_DATA_DIR,
) -> None:
    """Create/update the project and import the articles it does not have yet (safe to rerun).

    With predictions, new tasks come most uncertain first (``data.uncertainty``), and tasks
    already there get this model version's predictions beside their older ones.
    """
    from pipelines.studio.sync import connect
    from pipelines.studio.sync import push as do_push

    if not articles.exists():
        raise _fail(
            FileNotFoundError(f"{articles} not found: run `dvc repro ingest` or pass --articles")
        )
    with stage("studio push") as counts:
        try:
            if predictions == "none" and (tagger or model):
                raise StudioError("--tagger/--model go with --predictions model, not 'none'")
            predictor = None if predictions == "none" else _predictor(predictions, tagger, model)
            client = connect(*srv.connection(data_dir))
            result = do_push(
                client,
                list(read_articles(articles)),
                project,
                predictor,
                batch_size,
                annotators=annotators,
            )
        except StudioError as e:
            raise _fail(e) from e
        counts.update({k: v for k, v in result.items() if k != "seconds"})
    if result["changed_articles"]:
        typer.echo(
            f"{result['changed_articles']} article(s) changed text since their import: new tasks created, "
            f"{result['stale_tasks_flagged']} old task(s) kept and flagged 'stale'",
            err=True,
        )


@app.command()
def pull(
    out: Annotated[
        Path,
        typer.Option(
            help="Output folder (annotations.jsonl, stale.jsonl, skipped.jsonl, report.json)."
        ),
    ] = Path("data/annotations/export"),
    project: Project = "claimtrace",
    dvc_add: Annotated[
        bool, typer.Option(help="Run `dvc add` on the output folder (inside a DVC repo).")
    ] = True,
    data_dir: DataDir = srv.DEFAULT_DATA_DIR,
) -> None:
    """Export the project (full JSON, with relations) and write its annotations as Documents.

    Each task's agreement between its annotators goes back into its data (``data.agreement``,
    a Data Manager column); annotations are never changed.
    """
    from pipelines.studio.sync import connect, write_agreement
    from pipelines.studio.sync import pull as do_pull

    with stage("studio pull") as counts:
        t0 = time.perf_counter()
        try:
            client = connect(*srv.connection(data_dir))
            result = do_pull(client, project)
        except StudioError as e:
            raise _fail(e) from e
        report = {
            "project": project,
            "counts": dict(result.stats.counts),
            "skipped": result.stats.skipped,
        }
        out.mkdir(parents=True, exist_ok=True)
        errors_path = out / "pull-errors.json"
        if result.errors:
            # the previous pull's files stay as they were: a partial export is never written
            write_json(errors_path, {**report, "errors": result.errors}, indent=2)
            typer.echo(
                f"error: {len(result.errors)} annotation(s) cannot be converted; nothing written",
                err=True,
            )
            for e in result.errors[:20]:
                typer.echo(f"  {e}", err=True)
            typer.echo(
                f"fix them in Label Studio and pull again (all errors: {errors_path})", err=True
            )
            raise typer.Exit(code=1)
        errors_path.unlink(missing_ok=True)
        write_documents(out / "annotations.jsonl", result.documents)
        write_documents(out / "stale.jsonl", result.stale)
        write_jsonl(out / "skipped.jsonl", result.stats.skipped)
        report["seconds"] = round(time.perf_counter() - t0, 2)
        write_json(out / "report.json", report, indent=2, sort_keys=True)
        counts.update(result.stats.counts)
        try:
            # after the files: a failed write-back loses nothing, and the next pull redoes it
            counts["agreement_written"] = write_agreement(client, result.agreement)
        except StudioError as e:
            raise _fail(e) from e
        root = _dvc_root(out) if dvc_add else None
        if root is not None:
            target = out.absolute().relative_to(root)
            subprocess.run([sys.executable, "-m", "dvc", "add", str(target)], cwd=root, check=True)
            counts["dvc_add"] = str(target)


def _dvc_root(path: Path) -> Path | None:
    """The DVC repo holding ``path`` (the nearest folder above it with a ``.dvc/``), if any."""
    return next((p for p in path.absolute().parents if (p / ".dvc").is_dir()), None)


@app.command()
def agreement(
    annotations: Annotated[Path, typer.Option(help="Pulled annotations (Documents JSONL).")] = Path(
        "data/annotations/export/annotations.jsonl"
    ),
    out: Annotated[Path | None, typer.Option(help="Also write the report here (JSON).")] = None,
) -> None:
    """Inter-annotator agreement on the pulled annotations."""
    from pipelines.studio.agreement import run

    if not annotations.exists():
        raise _fail(
            FileNotFoundError(
                f"{annotations}: no annotations pulled yet; run `claimtrace studio pull` first "
                "(or pass --annotations FILE)"
            )
        )
    result = run(annotations, out)
    typer.echo(json.dumps(result, indent=2, sort_keys=True, default=str))


@app.command()
def backend(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = BACKEND_PORT,
    predictions: Annotated[str, typer.Option(help="What answers: model or rules.")] = "model",
    tagger: Annotated[
        Path | None,
        typer.Option(help="Span tagger dir (default: params predict.tagger)."),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="Stance model dir (default: params predict.model)."),
    ] = None,
) -> None:
    """Serve the models as a Label Studio ML backend (/health, /setup, /predict, /webhook).

    Reloads by itself when `dvc repro` writes new models; connect it with `studio connect-backend`.
    """
    import logging

    from pipelines.studio.backend import ModelSlot, serve

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    try:
        folders = _folders(predictions, tagger, model)
        watch = MODEL_FOLDERS[predictions](**folders) if predictions in MODEL_FOLDERS else []
        slot = ModelSlot(load=lambda: _predictor(predictions, tagger, model), watch=watch)

        def ready(url: str) -> None:
            typer.echo(f"ML backend at {url}, model_version {slot.version}", err=True)

        serve(slot, port, ready)
    except (StudioError, ParamsError) as e:
        raise _fail(e) from e
    except KeyboardInterrupt:
        typer.echo("stopped", err=True)


@app.command("connect-backend")
def connect_backend(
    url: Annotated[
        str, typer.Option(help="The ML backend's URL.")
    ] = f"http://127.0.0.1:{BACKEND_PORT}",
    project: Project = "claimtrace",
    title: Annotated[
        str, typer.Option(help="Its name in the project's Model settings.")
    ] = "claimtrace",
    data_dir: DataDir = srv.DEFAULT_DATA_DIR,
) -> None:
    """Connect the project to an ML backend (Label Studio's /api/ml): a task opened without
    predictions gets the backend's, stored under its model_version."""
    from pipelines.studio.sync import connect, connect_ml_backend

    try:
        client = connect(*srv.connection(data_dir))
        result = connect_ml_backend(client, project, url, title)
    except StudioError as e:
        raise _fail(e) from e
    typer.echo(
        f"project {project!r}: ML backend {url} {result['state']} "
        f"(model_version {result['model_version']}, {'new' if result['created'] else 'already connected'})"
    )
