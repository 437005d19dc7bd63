"""A stage's params section is read strictly: no unknown, missing or mistyped keys."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pipelines.core.params import ParamsError, load_section


@dataclass(frozen=True)
class Example:
    inputs: tuple[str, ...]
    rate: float
    epochs: int
    model: str | None

    def validate(self) -> None:
        if self.epochs < 1:
            raise ParamsError("example.epochs must be >= 1")


def write(tmp_path, body: str):
    path = tmp_path / "params.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_reads_and_coerces(tmp_path):
    path = write(
        tmp_path,
        "example:\n  inputs: [a, b]\n  rate: 1\n  epochs: 2\n  model: null\nother: {x: 1}\n",
    )
    assert load_section(Example, "example", path) == Example(("a", "b"), 1.0, 2, None)


@pytest.mark.parametrize(
    "body, message",
    [
        ("example:\n  inputs: [a]\n  rate: 1\n  epochs: 2\n", r"missing keys \['model'\]"),
        (
            "example:\n  inputs: [a]\n  rate: 1\n  epochs: 2\n  model: m\n  epoch: 3\n",
            r"unknown keys \['epoch'\]",
        ),
        ("example:\n  inputs: a\n  rate: 1\n  epochs: 2\n  model: m\n", "expected a list"),
        ("example:\n  inputs: [a]\n  rate: 1\n  epochs: true\n  model: m\n", "expected int"),
        ("example:\n  inputs: [a]\n  rate: 1\n  epochs: 0\n  model: m\n", ">= 1"),
        ("other: {}\n", "no section 'example'"),
    ],
)
def test_bad_params_name_the_key(tmp_path, body, message):
    with pytest.raises(ParamsError, match=message):
        load_section(Example, "example", write(tmp_path, body))
