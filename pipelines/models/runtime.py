"""Run the same trained weights faster: ONNX Runtime, optionally with int8 weights.

A runtime is chosen per command (``runtime`` in params, ``--runtime`` on the CLI):

- ``torch``: the transformers model as trained (the reference).
- ``onnx``: the same graph exported to ONNX and run by ONNX Runtime in fp32 (same labels).
- ``onnx-int8``: that graph with its Linear weights quantised to int8 per channel (dynamic
  quantisation: each batch's activations are quantised with scales computed from that batch,
  so a pair's scores depend slightly on its batch neighbours; hence opt-in). ``make bench``
  reports its label agreement with ``torch`` and the test-set F1 difference.

An exported graph is cached under ``$CLAIMTRACE_CACHE`` (default ``~/.cache/claimtrace``) by the
sha256 of the model's weights and config, so a model folder (a DVC output) is never written to,
and a retrained model is re-exported. Where ONNX Runtime is not installed, the ONNX runtimes fall
back to ``torch`` with one warning: a missing accelerator never stops a command.

torch, onnx and onnxruntime are imported inside functions only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("claimtrace.runtime")  # under the stage logs' handler

RUNTIMES: tuple[str, ...] = ("torch", "onnx", "onnx-int8")
CACHE_ENV = "CLAIMTRACE_CACHE"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


class UnknownRuntime(ValueError):
    """A runtime name that is not one of :data:`RUNTIMES`."""


def check_runtime(name: str) -> str:
    if name not in RUNTIMES:
        raise UnknownRuntime(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIMES)}")
    return name


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "claimtrace")


def weights_digest(model_dir: Path) -> str:
    """sha256 of the files that define the graph and its weights (not the tokenizer)."""
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        with open(model_dir / name, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()[:24]


@dataclass
class Output:
    """What the callers read from a transformers model's output."""

    logits: Any


class OnnxModel:
    """An ONNX Runtime session called like the transformers model it was exported from
    (``model(input_ids=, attention_mask=, token_type_ids=).logits``, torch tensors in and out)."""

    def __init__(self, path: Path, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Output:
        import numpy as np
        import torch

        ids = input_ids.numpy().astype(np.int64)
        feeds = {
            "input_ids": ids,
            "attention_mask": attention_mask.numpy().astype(np.int64),
            "token_type_ids": np.zeros_like(ids)
            if token_type_ids is None
            else token_type_ids.numpy().astype(np.int64),
        }
        return Output(torch.from_numpy(self.session.run(None, feeds)[0]))


def export_onnx(model: Any, path: Path) -> Path:
    """The fp32 graph of ``model`` at ``path`` (batch and sequence length dynamic)."""
    import torch

    class Logits(torch.nn.Module):
        """Only the logits, the inputs in a fixed order."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).logits

    example = torch.ones((2, 8), dtype=torch.long)
    example_mask = example.clone()
    example_mask[1, 5:] = 0  # a padded row, so the mask is traced as data, not a constant
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUT_NAMES}
    # the tracer warns about shape checks it freezes; they hold for any batch and length here
    # (the tests compare the graph with torch at other shapes), so users are not shown them
    with _atomic(path) as tmp, _quiet(), torch.no_grad():
        torch.onnx.export(
            Logits(),
            (example, example_mask, torch.zeros_like(example)),
            str(tmp),
            input_names=list(INPUT_NAMES),
            output_names=["logits"],
            dynamic_axes={**axes, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def quantize_int8(fp32: Path, path: Path) -> Path:
    """``fp32`` with its MatMul weights in int8, one scale per output channel."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _atomic(path) as tmp, _quiet():
        quantize_dynamic(str(fp32), str(tmp), per_channel=True, weight_type=QuantType.QInt8)
    return path


@contextmanager
def _quiet() -> Iterator[None]:
    """No warnings, and no root-logger INFO or WARNING lines (the ONNX quantiser logs one per
    node, and a WARNING advising pre-processing that does not apply to these graphs)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


class _atomic:
    """A temporary path beside ``path``, renamed over it on success (concurrent shards of one
    command may export the same model: each writes its own file, the last rename wins)."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.path.parent, suffix=".onnx.tmp")
        os.close(fd)
        self.tmp = Path(name)
        return self.tmp

    def __exit__(self, kind: Any, *_: Any) -> None:
        if kind is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def onnx_paths(model_dir: Path, task: str) -> tuple[Path, Path]:
    folder = cache_root() / "onnx" / f"{task}-{weights_digest(model_dir)}"
    return folder / "model.onnx", folder / "model.int8.onnx"


def accelerate(model: Any, model_dir: Path, task: str, runtime: str) -> tuple[Any, str]:
    """The model to run under ``runtime`` and the runtime actually used (``torch`` when ONNX
    Runtime is missing). Exports and quantises on first use, then reuses the cached graph."""
    import torch

    check_runtime(runtime)
    if runtime == "torch":
        return model, runtime
    if not onnx_available():
        log.warning("runtime %s: onnxruntime/onnx not installed; running torch instead", runtime)
        return model, "torch"
    fp32, int8 = onnx_paths(model_dir, task)
    if not fp32.is_file():
        log.info("exporting %s to ONNX (%s), once per trained model", model_dir, fp32.parent)
        export_onnx(model, fp32)
    path = fp32
    if runtime == "onnx-int8":
        if not int8.is_file():
            quantize_int8(fp32, int8)
        path = int8
    return OnnxModel(path, torch.get_num_threads()), runtime
