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

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright import sync_api

from pipelines.core.document import AnnotationSet, Article, Relation, Span
from pipelines.studio import sync as ls
from pipelines.studio.backend import ModelSlot, make_server
from pipelines.studio.tasks import LS_OFFSET_UNIT, annotation_to_result

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


@contextlib.contextmanager
def logged_in(chromium, studio, blocked: list[str] | None = None) -> Iterator[sync_api.Page]:
    """A page logged in to ``studio`` as its admin; requests to anything but the local server are
    aborted (telemetry or CDN calls would hang or leak) and listed in ``blocked``."""
    context = chromium.new_context(viewport={"width": 1400, "height": 900})

    def local_only(route: sync_api.Route) -> None:
        if route.request.url.startswith(studio.url):
            route.continue_()
            return
        if blocked is not None:
            blocked.append(route.request.url)
        route.abort()

    try:
        context.route("**/*", local_only)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{studio.url}/user/login/")
        page.fill("#email", studio.username)
        page.fill("#password", studio.password)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: "/user/login" not in url)
        yield page
    finally:
        context.close()


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
    with logged_in(chromium, studio, blocked) as page:
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


# --- the annotation loop in the UI: the ML backend's regions, the agreement column -------------

LOOP_TEXT = "Officials in Kyiv said the talks had stalled, a diplomat told reporters on Friday."
LOOP_SOURCE, LOOP_CLAIM = "Officials in Kyiv", "the talks had stalled"


class KyivPredictor:
    """A scoring predictor behind the real ML backend: Source, Claim and their relation."""

    name = "loop-test"
    version = "1"

    def annotate(self, article: Article) -> AnnotationSet:
        text = article.text
        spans = []
        for sid, label, piece in (("s1", "Source", LOOP_SOURCE), ("c1", "Claim", LOOP_CLAIM)):
            start = text.find(piece)
            if start >= 0:
                spans.append(Span(sid, label, start, start + len(piece), piece, score=0.8))
        relations = (Relation("s1", "c1", "asserts", score=0.7),) if len(spans) == 2 else ()
        return AnnotationSet(
            self.name, "prediction", spans=tuple(spans), relations=relations,
            model_version="loop-test-1",
        )  # fmt: skip


@pytest.fixture
def ml_backend():
    """The real ML backend server (pipelines.studio.backend) on a free 127.0.0.1 port."""
    slot = ModelSlot(load=KyivPredictor)
    slot.reload()
    server = make_server(slot, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_backend_regions_and_agreement_column_in_the_browser(studio, chromium, ml_backend):
    ARTIFACTS.mkdir(exist_ok=True)
    client = ls.connect(studio.url, studio.token)
    project = f"loop-{uuid.uuid4().hex[:8]}"
    annotated = Article.from_text(LOOP_TEXT.replace("Friday", "Monday"), title="annotated twice")
    fresh = Article.from_text(LOOP_TEXT, title="no predictions yet")
    pushed = ls.push(client, [annotated, fresh], project=project, predictor=None, progress=False)
    project_id = pushed["project_id"]
    ids = {t["data"]["article_id"]: t["id"] for t in ls.existing_tasks(client, project_id)}

    # two annotators disagree on the annotated task; pull writes its agreement to the task
    gold = KyivPredictor().annotate(annotated)
    email = f"{project}@example.com"
    other = client.users.create(email=email, username=project, password="x" * 12)
    client.annotations.create(
        id=ids[annotated.id], result=annotation_to_result(annotated.text, gold)
    )
    half = AnnotationSet("x", "prediction", spans=gold.spans[:1])
    client.annotations.create(
        id=ids[annotated.id],
        result=annotation_to_result(annotated.text, half),
        completed_by=other.id,
    )
    pulled = ls.pull(client, project)
    assert ls.write_agreement(client, pulled.agreement) == 1
    agreement = pulled.agreement[ids[annotated.id]]

    connected = ls.connect_ml_backend(client, project, ml_backend, "claimtrace")
    assert connected["state"] == "Connected" and connected["model_version"] == "loop-test-1"
    assert ls.existing_tasks(client, project_id)[-1]["model_versions"] == set()

    with logged_in(chromium, studio) as page:
        page.goto(f"{studio.url}/projects/{project_id}/data")
        rows = page.locator("[data-testid=table-row-wrapper]")
        sync_api.expect(rows).to_have_count(2)
        # the agreement is a Data Manager column (sortable like any data field)
        header = page.get_by_text("agreement", exact=True).first
        header.scroll_into_view_if_needed()
        sync_api.expect(rows.filter(has_text=annotated.title)).to_contain_text(str(agreement))
        page.screenshot(path=str(ARTIFACTS / "studio_loop_data_manager.png"))

        # open the task with no stored predictions: Label Studio asks the backend and draws its
        # regions and the relation between them
        rows.filter(has_text=fresh.title).click()
        page.locator(".lsf-richtext__line").wait_for()
        pre = page.locator(".htx-highlight")
        sync_api.expect(pre).to_have_text([LOOP_SOURCE, LOOP_CLAIM], timeout=60_000)
        arrows = page.locator("svg.relations-overlay path")
        sync_api.expect(arrows.first).to_be_attached(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "studio_loop_backend_regions.png"))
    (task,) = [t for t in ls.existing_tasks(client, project_id) if t["id"] == ids[fresh.id]]
    assert task["model_versions"] == {"loop-test-1"}  # stored by Label Studio, from the backend
