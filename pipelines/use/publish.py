"""Command ``publish``: put the trained model (and optionally the dataset) on the Hugging Face Hub.

Not a DVC stage: uploading is an explicit act with credentials. It builds a Hub-ready folder
under ``--out`` (weights as safetensors, tokenizer, config with ``id2label``, a generated model
card), refuses to upload anything that could run code on load (``*.bin``/``*.pkl``/``*.pt``), then
uploads it with ``huggingface_hub`` (``create_repo(exist_ok=True)`` + ``upload_folder``).

The token comes only from ``HF_TOKEN`` or ``huggingface_hub``'s stored login (``hf auth login``),
never from the command line (shell history, process list), and is never logged or written. The
Hub address follows ``HF_ENDPOINT`` like every ``huggingface_hub`` client.
"""

from __future__ import annotations

import json
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from pipelines.core.params import ParamsError, load_section
from pipelines.core.stagelog import log, stage
from pipelines.use.model_card import (
    CardError,
    CardInputs,
    hub_dataset_card,
    model_card,
    read_json_files,
)

# Files a transformers model folder may ship; anything else in the model dir (checkpoints,
# optimizer states, training_args.bin) stays local.
MODEL_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "training_metrics.json",
    "claimtrace.json",  # task, max_length and decision biases, which inference needs
    "relatedness.json",  # the stance model's relatedness stage (logistic regression, as JSON)
)
TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
)
# Pickle-based formats execute code when loaded: never published.
UNSAFE_SUFFIXES = (".bin", ".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".joblib")
DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".arrow", ".csv")
TASKS = {
    "ForSequenceClassification": "text-classification",
    "ForTokenClassification": "token-classification",
}
TRAIN_SECTIONS = {"text-classification": "train_stance", "token-classification": "train_tagger"}


class PublishError(ValueError):
    """The folder is not safe or complete to publish, or the Hub refused; says what to do."""


@dataclass(frozen=True)
class PublishParams:
    base_model: str  # Hub id of the model fine-tuned from (card metadata)
    license: str  # Hub licence identifier of the weights
    tags: tuple[str, ...]

    def validate(self) -> None:
        if not self.base_model.strip() or not self.license.strip():
            raise ParamsError("publish.base_model and publish.license must not be empty")


def safetensors_parameters(path: Path) -> int:
    """Number of weights, read from the safetensors header (which also proves the format)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise PublishError(f"{path}: too short to be a safetensors file")
        (size,) = struct.unpack("<Q", head)
        try:
            header = json.loads(f.read(size))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PublishError(
                f"{path}: not a safetensors file (bad header); re-save with save_pretrained"
            ) from e
    total = 0
    for name, info in header.items():
        if name != "__metadata__":
            n = 1
            for dim in info["shape"]:
                n *= dim
            total += n
    return total


def build_model_folder(model_dir: Path, out: Path) -> None:
    """Copy the publishable files of ``model_dir`` into ``out`` (replaced whole); name the rest."""
    if not (model_dir / "config.json").is_file():
        raise PublishError(f"{model_dir}: no config.json; train the model first (dvc repro)")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    skipped = []
    for path in sorted(model_dir.iterdir()):
        if path.is_file() and (path.name in MODEL_FILES or path.suffix == ".safetensors"):
            shutil.copy2(path, out / path.name)
        else:
            skipped.append(path.name)
    if skipped:
        log.info("not published from %s: %s", model_dir, ", ".join(skipped))


def validate_model_folder(folder: Path) -> dict[str, Any]:
    """Check the folder is loadable and pickle-free before anything leaves the machine."""
    unsafe = sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix in UNSAFE_SUFFIXES
    )
    if unsafe:
        raise PublishError(
            f"{folder}: pickle-based files {unsafe} would run code when loaded; "
            "publish safetensors only (save_pretrained(..., safe_serialization=True))"
        )
    if not list(folder.glob("*.safetensors")):
        raise PublishError(
            f"{folder}: no *.safetensors weights; re-save the model with save_pretrained"
        )
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    id2label = config.get("id2label") or {}
    if not id2label or all(str(v).startswith("LABEL_") for v in id2label.values()):
        raise PublishError(
            f"{folder / 'config.json'}: no id2label with real label names; "
            "train with id2label/label2id so predictions are readable"
        )
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise PublishError(
            f"{folder}: no tokenizer files ({', '.join(TOKENIZER_FILES)}); save the tokenizer "
            "next to the model (tokenizer.save_pretrained)"
        )
    return config


def task_of(config: dict[str, Any]) -> str:
    for arch in config.get("architectures") or ():
        for suffix, task in TASKS.items():
            if arch.endswith(suffix):
                return task
    raise PublishError(
        f"config.json architectures {config.get('architectures')} are not a sequence or token "
        "classifier; only the stance and tagger models are published"
    )


def read_training(
    model_dir: Path, task: str, params_path: Path, metrics: dict[str, Any]
) -> dict[str, Any]:
    """Training parameters and logs for the card: the train section of params.yaml (if present),
    ``training_metrics.json`` from the model folder, and ``metrics/train*.json``."""
    training: dict[str, Any] = {}
    section = TRAIN_SECTIONS[task]
    if params_path.is_file():
        params = yaml.safe_load(params_path.read_text(encoding="utf-8")) or {}
        if params.get(section):
            training[f"params.yaml [{section}]"] = params[section]
        else:
            log.warning(
                "%s has no %s section: the card lists no training parameters", params_path, section
            )
    training_file = model_dir / "training_metrics.json"
    if training_file.is_file():
        try:
            training["training_metrics.json"] = json.loads(
                training_file.read_text(encoding="utf-8")
            )
        except json.JSONDecodeError as e:
            raise CardError(f"{training_file}: not valid JSON ({e.msg}, line {e.lineno})") from e
    training.update(
        {f"metrics/{stem}.json": data for stem, data in metrics.items() if stem.startswith("train")}
    )
    return training


def build_dataset_folder(dataset_dir: Path, out: Path) -> list[str]:
    """Copy the dataset's data files (JSONL/JSON/Parquet/Arrow/CSV) into ``out`` (replaced whole)."""
    if not dataset_dir.is_dir():
        raise PublishError(f"{dataset_dir}: no dataset folder; run `dvc repro build_dataset` first")
    unsafe = sorted(str(p) for p in dataset_dir.rglob("*") if p.suffix in UNSAFE_SUFFIXES)
    if unsafe:
        raise PublishError(f"{dataset_dir}: pickle-based files {unsafe} are never published")
    if out.exists():
        shutil.rmtree(out)
    files = []
    for path in sorted(
        p for p in dataset_dir.rglob("*") if p.is_file() and p.suffix in DATA_SUFFIXES
    ):
        rel = path.relative_to(dataset_dir)
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, out / rel)
        files.append(rel.as_posix())
    if not files:
        raise PublishError(f"{dataset_dir}: no data files ({', '.join(DATA_SUFFIXES)}) to publish")
    return files


def folder_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def hub_token() -> str:
    """The token from HF_TOKEN or the stored login; never from an argument."""
    from huggingface_hub import constants, get_token

    if constants.is_offline_mode():
        raise PublishError(
            "HF_HUB_OFFLINE is set (the Makefile sets it for training): run publish with "
            "HF_HUB_OFFLINE=0, or use --dry-run to only build the folder"
        )
    token = get_token()
    if not token:
        raise PublishError(
            "no Hugging Face token: set HF_TOKEN (e.g. in the ignored .env) or run "
            "`hf auth login`; a write-scoped token is needed"
        )
    return token


def hub_failures() -> tuple[type[Exception], ...]:
    """What a Hub call raises when the Hub refuses (HTTP error) or cannot be reached."""
    import httpx2  # huggingface_hub's HTTP client
    from huggingface_hub.errors import HfHubHTTPError

    return (HfHubHTTPError, httpx2.TransportError)


def hub_error(e: Exception, endpoint: str, what: str) -> PublishError:
    """A Hub failure as a message that says what to check (the token itself never appears)."""
    from huggingface_hub.errors import HfHubHTTPError

    if not isinstance(e, HfHubHTTPError):
        return PublishError(
            f"cannot reach the Hub at {endpoint} for {what} ({e}): check HF_ENDPOINT and the network"
        )
    status = e.response.status_code if e.response is not None else None
    if status in (401, 403):
        return PublishError(
            f"the Hub at {endpoint} refused the token ({status}) for {what}: check HF_TOKEN / `hf auth login`, "
            "that the token has write access and that you may write to that namespace"
        )
    return PublishError(f"{what} at {endpoint} failed: {e}")


def full_repo_ids(repo_ids: list[str], token: str) -> list[str]:
    """Prefix bare names with the token owner's namespace (one whoami call, only when needed)."""
    if all("/" in r for r in repo_ids):
        return repo_ids
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        user = api.whoami()["name"]
    except hub_failures() as e:
        raise hub_error(e, api.endpoint, "whoami") from e
    return [r if "/" in r else f"{user}/{r}" for r in repo_ids]


def upload(folder: Path, repo_id: str, repo_type: str, private: bool, token: str) -> str:
    """Create the repo if needed and upload ``folder`` in one commit; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type=repo_type,
            folder_path=folder,
            commit_message=f"claimtrace publish ({repo_type})",
        )
    except hub_failures() as e:
        raise hub_error(e, api.endpoint, f"{repo_type} repo {repo_id!r}") from e
    return commit.commit_url


def publish(
    repo_id: str,
    *,
    private: bool,
    dataset_repo_id: str | None,
    model_dir: Path,
    metrics_dir: Path,
    dataset_dir: Path,
    out: Path,
    dry_run: bool,
    params: PublishParams,
    params_path: Path,
) -> dict[str, Any]:
    """Build, validate and (unless ``dry_run``) upload; returns counts for the stage report."""
    token = None if dry_run else hub_token()
    if token is not None:
        repo_id, *rest = full_repo_ids(
            [repo_id, *([dataset_repo_id] if dataset_repo_id else [])], token
        )
        dataset_repo_id = rest[0] if rest else None
    model_out = out / "model"
    build_model_folder(model_dir, model_out)
    config = validate_model_folder(model_out)
    task = task_of(config)
    metrics = read_json_files(metrics_dir, "metrics")
    labels = tuple(config["id2label"][k] for k in sorted(config["id2label"], key=int))
    inputs = CardInputs(
        repo_id=repo_id,
        task=task,
        labels=labels,
        base_model=params.base_model,
        license=params.license,
        tags=params.tags,
        datasets=(dataset_repo_id,) if dataset_repo_id else (),
        metrics={stem: data for stem, data in metrics.items() if not stem.startswith("train")},
        training=read_training(model_dir, task, params_path, metrics),
        parameters=sum(safetensors_parameters(p) for p in model_out.glob("*.safetensors")),
    )
    model_card(inputs).save(model_out / "README.md")
    folders = [(model_out, repo_id, "model", private)]

    if dataset_repo_id:
        data_out = out / "dataset"
        files = build_dataset_folder(dataset_dir, data_out)
        readme = dataset_dir / "README.md"
        details = readme.read_text(encoding="utf-8") if readme.is_file() else None
        hub_dataset_card(dataset_repo_id, files, params.tags, details).save(data_out / "README.md")
        # The texts belong to their publishers (no licence upstream): never a public repo.
        folders.append((data_out, dataset_repo_id, "dataset", True))

    counts: dict[str, Any] = {"files": 0, "bytes": 0}
    for folder, rid, repo_type, is_private in folders:
        n_files, n_bytes = folder_size(folder)
        counts["files"] += n_files
        counts["bytes"] += n_bytes
        if dry_run:
            log.info("dry run: %s repo %s not uploaded; its folder is %s", repo_type, rid, folder)
            continue
        log.info(
            "uploading %d files (%d bytes) to %s repo %s%s",
            n_files,
            n_bytes,
            repo_type,
            rid,
            " (private)" if is_private else "",
        )
        log.info("committed %s", upload(folder, rid, repo_type, is_private, token))  # type: ignore[arg-type]
    counts["uploaded"] = 0 if dry_run else len(folders)
    return counts


def command(
    repo_id: Annotated[
        str, typer.Option(help="Model repo on the Hub, e.g. user/claimtrace-stance.")
    ],
    private: Annotated[bool, typer.Option(help="Create the model repo as private.")] = False,
    dataset_repo_id: Annotated[
        str | None,
        typer.Option(help="Also upload the dataset to this (always private) dataset repo."),
    ] = None,
    model_dir: Annotated[Path, typer.Option(help="Trained model folder.")] = Path("models/stance"),
    metrics_dir: Annotated[
        Path, typer.Option(help="Folder of evaluation metrics JSON files.")
    ] = Path("metrics"),
    dataset_dir: Annotated[Path, typer.Option(help="Dataset folder for --dataset-repo-id.")] = Path(
        "data/datasets/stance"
    ),
    out: Annotated[
        Path, typer.Option(help="Where the Hub-ready folders are built (model/, dataset/).")
    ] = Path("build/hub"),
    dry_run: Annotated[
        bool, typer.Option(help="Build and check the folders, upload nothing.")
    ] = False,
    params: Annotated[Path, typer.Option(help="Parameters file (section 'publish').")] = Path(
        "params.yaml"
    ),
) -> None:
    """Publish the model (and dataset) to the Hugging Face Hub; token from HF_TOKEN or `hf auth login`."""
    p = load_section(PublishParams, "publish", params)
    with stage("publish", fail_on=(PublishError, CardError)) as counts:
        counts.update(
            publish(
                repo_id,
                private=private,
                dataset_repo_id=dataset_repo_id,
                model_dir=model_dir,
                metrics_dir=metrics_dir,
                dataset_dir=dataset_dir,
                out=out,
                dry_run=dry_run,
                params=p,
                params_path=params,
            )
        )


if __name__ == "__main__":
    typer.run(command)
