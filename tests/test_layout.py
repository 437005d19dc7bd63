"""The shape of the ``pipelines`` package: what may import what, and what dvc.yaml must list.

* The annotation side (``pipelines.studio``) never loads torch, transformers or the model code:
  ``claimtrace`` (``pipelines.cli``) hands it the predictors.
* Every module a DVC stage imports, directly or through other modules, lies under one of the
  stage's deps in dvc.yaml, so a code change always reruns the stages it can affect.
* No two modules share a name, and no function grows past ~80 lines.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ROOT / "pipelines"
MAX_FUNCTION_LINES = 80

IMPORT_STUDIO = """
import importlib, json, pkgutil, sys
import pipelines.studio as studio
names = [m.name for m in pkgutil.walk_packages(studio.__path__, "pipelines.studio.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"imported": names, "modules": sorted(sys.modules)}))
"""


def test_studio_imports_neither_torch_nor_the_model_code() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", IMPORT_STUDIO], cwd=ROOT, capture_output=True, text=True, check=True
    )
    result = json.loads(proc.stdout.splitlines()[-1])
    expected = {"agreement", "cli", "labeling", "server", "sync", "tasks"}
    assert {name.rsplit(".", 1)[1] for name in result["imported"]} >= expected
    forbidden = [
        name
        for name in result["modules"]
        if name.split(".")[0] in ("torch", "transformers")
        or name.startswith(("pipelines.models", "pipelines.use", "pipelines.learn"))
    ]
    assert not forbidden, f"importing pipelines.studio loaded {forbidden}"


# --- dvc.yaml deps cover what each stage imports ---------------------------------------------------


def module_file(module: str) -> Path | None:
    """The source file of a ``pipelines`` module or package, if there is one."""
    path = ROOT.joinpath(*module.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def imported_modules(module: str) -> set[str]:
    """The ``pipelines`` modules ``module`` imports anywhere in its code (inside functions too),
    with the packages above each (importing ``a.b.c`` runs ``a/__init__`` and ``a/b/__init__``)."""
    path = module_file(module)
    assert path is not None, module
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pipelines"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipelines"):
            assert node.module is not None
            found.add(node.module)
            # `from pipelines.core import scoring` imports the submodule pipelines.core.scoring
            found.update(
                f"{node.module}.{a.name}"
                for a in node.names
                if module_file(f"{node.module}.{a.name}") is not None
            )
    parents = {".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 1)}
    return found | parents


def import_closure(module: str) -> set[str]:
    """``module``, the packages above it and everything they import, directly or not."""
    seen, todo = set(), [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 2)]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(imported_modules(current) - seen)
    return seen


def runs_no_code(path: Path) -> bool:
    """A package ``__init__`` with nothing but a docstring and constants (e.g. ``__version__``)."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return path.name == "__init__.py" and all(
        isinstance(node, ast.Expr | ast.Assign)
        or (isinstance(node, ast.ImportFrom) and node.module == "__future__")
        for node in body
    )


STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_deps_cover_every_module_it_imports(name: str) -> None:
    stage = STAGES[name]
    module = stage["cmd"].split("python -m ", 1)[1].split()[0]
    deps = [ROOT / dep for dep in stage["deps"]]
    missing = sorted(
        str(path.relative_to(ROOT))
        for m in import_closure(module)
        if (path := module_file(m)) is not None
        and not runs_no_code(path)
        and not any(path == dep or dep in path.parents for dep in deps)
    )
    assert not missing, f"dvc.yaml stage {name!r} imports {missing} but does not depend on them"


def test_build_dataset_does_not_depend_on_training_code() -> None:
    deps = STAGES["build_dataset"]["deps"]
    assert not [d for d in deps if d.startswith(("pipelines/models", "pipelines/learn/train"))]
    assert "pipelines/learn" not in deps


# --- names and sizes -----------------------------------------------------------------------------


def test_no_two_modules_share_a_name() -> None:
    """One name, one meaning; ``cli`` is the typer app of the package and of ``studio`` alike."""
    by_name: dict[str, list[str]] = {}
    for path in PIPELINES.rglob("*.py"):
        if path.name != "__init__.py":
            by_name.setdefault(path.stem, []).append(str(path.relative_to(ROOT)))
    assert not {n: p for n, p in by_name.items() if len(p) > 1 and n != "cli"}


def test_no_function_is_longer_than_a_screen_or_two() -> None:
    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1})"
        for path in sorted(PIPELINES.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, "split these into named steps:\n" + "\n".join(long)


# --- the CLI wires the model side into the annotation side ----------------------------------------


def test_claimtrace_hands_studio_its_predictors() -> None:
    from pipelines.cli import rules_predictor
    from pipelines.core.document import Article, Document, validate
    from pipelines.models import rules
    from pipelines.studio import cli as studio_cli

    assert sorted(studio_cli.PREDICTORS) == ["model", "rules"]
    predictor = rules_predictor()
    article = Article.from_text("The Kremlin denied that Russia had used North Korean missiles.")
    ann = predictor.annotate(article)
    assert (predictor.name, ann.annotator, ann.model_version) == (
        "rules",
        "rules",
        f"rules-{rules.VERSION}",
    )
    assert {s.label for s in ann.spans} == {"Source", "Claim", "Denial"}
    validate(Document(article, (ann,)))
