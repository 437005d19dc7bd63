"""End to end in a real browser: an annotator labels a span in Label Studio, and pull reads it back.

Pins down the offset unit Label Studio 1.23 stores for ``<Text>`` regions: the text puts a ZWJ
emoji sequence (5 code points, 8 UTF-16 units) and a flag (2 code points, 4 UTF-16 units) before
the selected words, so code points and UTF-16 code units give different offsets. The converter
(``pipelines.studio.tasks.LS_OFFSET_UNIT``) must agree with what the UI stores, and pull must
return the span at its code-point offsets without falling back to the other unit.

Needs Debian's chromium (``apt-get install chromium``) and Playwright; the server is the real
one from the ``studio`` fixture. A screenshot and the raw stored region go to ``artifacts/``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from playwright import sync_api

from pipelines.core.document import AnnotationSet, Article, Span
from pipelines.studio import sync as ls
from pipelines.studio.tasks import LS_OFFSET_UNIT

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

TEXT = "Family 👩\u200d👩\u200d👧 and flag 🇺🇦 first: the minister said the deal was off."
SOURCE = "the minister"  # pre-annotated (prediction)
CLAIM = "the deal was off"  # selected with the mouse in the test

pytestmark = [pytest.mark.browser, pytest.mark.studio]


def utf16(text: str, index: int) -> int:
    return len(text[:index].encode("utf-16-le")) // 2


class MinisterPredictor:
    """Pre-annotates the Source, as a model would."""

    name = "browser-test"
    version = "1"

    def annotate(self, article: Article) -> AnnotationSet:
        start = article.text.index(SOURCE)
        span = Span("pred-source", "Source", start, start + len(SOURCE), SOURCE, score=0.9)
        return AnnotationSet(self.name, "prediction", spans=(span,), model_version="browser-test-1")


def _select_text(page, needle: str) -> None:
    """Drag the mouse over ``needle`` inside the Text tag, as an annotator would."""
    box = page.evaluate(
        """(needle) => {
          const root = document.querySelector('.lsf-richtext__line');
          const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
          for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            const i = node.data.indexOf(needle);
            if (i < 0) continue;
            const range = document.createRange();
            range.setStart(node, i);
            range.setEnd(node, i + needle.length);
            const rects = range.getClientRects();
            const first = rects[0], last = rects[rects.length - 1];
            return {x0: first.left + 1, y0: first.top + first.height / 2, x1: last.right - 1, y1: last.top + last.height / 2};
          }
          return null;
        }""",
        needle,
    )
    assert box is not None, f"{needle!r} is not shown as plain text in the task"
    page.mouse.move(box["x0"], box["y0"])
    page.mouse.down()
    page.mouse.move(box["x1"], box["y1"], steps=5)
    page.mouse.up()


def test_annotate_in_browser_and_pull(studio, chromium):
    ARTIFACTS.mkdir(exist_ok=True)
    client = ls.connect(studio.url, studio.token)
    project = f"browser-{uuid.uuid4().hex[:8]}"
    article = Article.from_text(TEXT, title="emoji before the claim")
    pushed = ls.push(
        client, [article], project=project, predictor=MinisterPredictor(), progress=False
    )
    assert pushed["imported"] == 1 and pushed["predictions"] == 1
    project_id = pushed["project_id"]
    (task,) = ls.existing_tasks(client, project_id)

    blocked: list[str] = []
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        # nothing but the local server: telemetry or CDN calls would hang or leak
        context.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(studio.url)
                else (blocked.append(route.request.url), route.abort())
            ),
        )
        page = context.new_page()
        page.set_default_timeout(30_000)

        page.goto(f"{studio.url}/user/login/")
        page.fill("#email", studio.username)
        page.fill("#password", studio.password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/user/login" not in url)

        # open the task from the project's task list, as an annotator does: a direct
        # /data?task=<id> URL races the list load in Label Studio's data manager (the task
        # is replaced while the editor starts, and the pre-annotation is lost)
        page.goto(f"{studio.url}/projects/{project_id}/data")
        page.locator("[data-testid=table-row-wrapper]").first.click()
        page.locator(".lsf-richtext__line").wait_for()
        # the task's heading (the article's title, else its file name) stands above the text
        page.get_by_text(article.title, exact=True).wait_for()
        # expect() waits (up to the timeout) for what the UI renders after the page loads
        sync_api.expect(page.locator(".lsf-label__text")).to_have_text(
            ["Claim", "Source", "Denial"], timeout=30_000
        )
        # the prediction is shown as a pre-annotated region, on the right characters
        pre = page.locator(".htx-highlight")
        sync_api.expect(pre).to_have_text([SOURCE], timeout=30_000)
        assert pre.first.get_attribute("data-label").endswith("Source")

        page.locator(".lsf-label__text", has_text="Claim").click()
        _select_text(page, CLAIM)
        page.locator(".htx-highlight", has_text=CLAIM).wait_for()
        assert sorted(page.locator(".htx-highlight").all_inner_texts()) == sorted([SOURCE, CLAIM])
        page.screenshot(path=str(ARTIFACTS / "studio_browser_annotation.png"))

        with page.expect_response(
            lambda r: r.request.method == "POST" and f"/api/tasks/{task['id']}/annotations" in r.url
        ) as submitted:
            page.get_by_role("button", name="Submit").click()
        assert submitted.value.status == 201, submitted.value.text()
    finally:
        context.close()

    # what Label Studio stored, raw
    (exported,) = ls.export_tasks(client, project_id)
    (annotation,) = exported["annotations"]
    regions = {r["value"]["labels"][0]: r for r in annotation["result"] if r["type"] == "labels"}
    start = TEXT.index(CLAIM)
    expected = {
        "codepoint": (start, start + len(CLAIM)),
        "utf16": (utf16(TEXT, start), utf16(TEXT, start + len(CLAIM))),
    }
    assert expected["codepoint"] != expected["utf16"]  # the emoji make the units distinguishable
    claim = regions["Claim"]["value"]
    stored = (claim["start"], claim["end"])
    (ARTIFACTS / "studio_browser_offsets.json").write_text(
        json.dumps(
            {
                "text": TEXT,
                "stored_regions": annotation["result"],
                "expected": expected,
                "blocked_requests": blocked,
            },
            ensure_ascii=False,
            indent=1,
        ),
        encoding="utf-8",
    )
    assert claim["text"] == CLAIM
    assert stored == expected["codepoint"], (
        f"Label Studio stored {stored}; expected code points {expected}"
    )
    assert LS_OFFSET_UNIT == "codepoint"  # the converter's unit matches the UI's
    assert (
        regions["Source"]["origin"] == "prediction"
    )  # the accepted pre-annotation is part of the annotation

    # pull reads the annotation back as a gold set at code-point offsets, no unit fallback
    result = ls.pull(client, project)
    assert result.errors == []
    (doc,) = result.documents
    (gold,) = doc.annotations
    assert gold.provenance == "gold" and gold.annotator == studio.username
    assert {(s.label, s.start, s.end, s.text) for s in gold.spans} == {
        ("Claim", start, start + len(CLAIM), CLAIM),
        ("Source", TEXT.index(SOURCE), TEXT.index(SOURCE) + len(SOURCE), SOURCE),
    }
    assert not result.stats.counts.get("spans_utf16_offsets")
