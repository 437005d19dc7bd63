"""`dvc plots show` draws offline: a confusion matrix and a training curve, in a real browser.

DVC's own page loads vega from a CDN, so its plots were blank on an offline machine. The project's
page template (``plots.html_template`` in .dvc/config: tools/dvc-plots/offline.html, vega inlined)
must draw them with every network request refused. The committed plot data (confusion CSVs of
``evaluate``, DVCLive training logs) are what `dvc plots show` reads; DVC's own template is drawn
beside it to show that the check can fail.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.core.io import write_text

PlaywrightTimeout = pytest.importorskip("playwright.sync_api").TimeoutError

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.browser
CONFUSION = "metrics_plots_confusion_fnc1__model_csv"
CURVE = "dvclive_stance_plots_metrics_loss_tsv"
# count the coloured pixels (not grey: axes, grid and labels are) of the vega view's canvas inside
# a plot's div, i.e. its marks: heatmap cells, the curve; its svg marks if it renders svg
DRAWN = """(id) => {
  const div = document.getElementById(id);
  if (!div) return -1;
  const svgMarks = div.querySelectorAll('svg .mark-rect path, svg .mark-line path').length;
  const canvas = div.querySelector('canvas');
  if (!canvas) return svgMarks;
  const {width, height} = canvas;
  const data = canvas.getContext('2d').getImageData(0, 0, width, height).data;
  let inked = 0;
  for (let i = 0; i < data.length; i += 4) {
    const rgb = [data[i], data[i + 1], data[i + 2]];
    if (data[i + 3] > 0 && Math.max(...rgb) - Math.min(...rgb) > 40) inked++;
  }
  return inked;
}"""


def plots_page(out: Path, template: Path | None = None) -> Path:
    dvc = Path(sys.executable).parent / "dvc"
    cmd = [str(dvc), "plots", "show", "-o", str(out)]
    if template is not None:
        cmd += ["--html-template", str(template)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / "index.html"


def drawn(
    browser, page_path: Path, wait_ms: int = 60_000
) -> tuple[dict[str, int], list[str], list[str]]:
    """Inked pixels per plot, requests that tried to leave the machine, page errors."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    blocked: list[str] = []
    errors: list[str] = []
    context.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith("file://")
            else (blocked.append(route.request.url), route.abort())
        ),
    )
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(page_path.as_uri(), timeout=120_000)
        ink = {}
        for plot in (CONFUSION, CURVE):
            page.locator(f"#{plot}").scroll_into_view_if_needed()
            # vega draws asynchronously: wait for ink, not for a fixed time (a timeout is left to
            # the caller's assertion on the count)
            with contextlib.suppress(PlaywrightTimeout):
                page.wait_for_function(f"({DRAWN})('{plot}') > 500", timeout=wait_ms)
            ink[plot] = page.evaluate(DRAWN, plot)
        return ink, blocked, errors
    finally:
        context.close()


def test_confusion_matrix_and_training_curve_draw_offline(chromium, tmp_path):
    page = plots_page(tmp_path / "offline")
    html = page.read_text(encoding="utf-8")
    assert "cdn.jsdelivr" not in html and 'data-package="vega@5' in html
    ink, blocked, errors = drawn(chromium, page)
    assert blocked == [] and errors == [], (blocked, errors)
    assert ink[CONFUSION] > 500 and ink[CURVE] > 500, ink

    # DVC's own page (what `dvc plots show` wrote before): scripts from a CDN, nothing drawn
    from dvc_render.html import PAGE_HTML

    default = tmp_path / "dvc-default.html"
    write_text(default, PAGE_HTML)
    ink, blocked, errors = drawn(chromium, plots_page(tmp_path / "default", default), 2_000)
    assert any("cdn.jsdelivr.net" in url for url in blocked)
    assert any("vegaEmbed is not defined" in e for e in errors), errors
    assert ink[CONFUSION] <= 0 and ink[CURVE] <= 0, ink
