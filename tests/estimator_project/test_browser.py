"""In a real headless browser (Debian's chromium, driven by Playwright): the inspection page loads, its
model card and curves (one per marketplace x category, grouped by marketplace) read at desktop and phone
widths, and the browsable API's form creates an estimation. Screenshots go to test-output/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from core import mongo
from core.api_keys import api_key_store
from ml.markets import split_segment
from modelops import segments
from tests.live import LiveServer, trained_database
from tests.model_card import model_card
from tests.modelops.fakes import ordered

pytestmark = pytest.mark.integration

OUTPUT = Path(__file__).resolve().parent.parent.parent / "test-output"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SIGNING_KEY = "browser-test-signing-key-not-a-secret"


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        message = "Debian's chromium is not installed (make test installs it when run as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def live(wire_server, tmp_path_factory):
    """A gunicorn server on its own database, with a trained model and an admin key."""
    with trained_database(wire_server, "test_browser", SIGNING_KEY) as database:
        store = api_key_store()
        store.ensure_indexes()
        admin_key = store.create(name="browser-admin", scope="admin")
        models = mongo.get_database()["models"]
        for version in models.find({"model_card": {"$exists": False}}):  # trained before cards: give it one
            models.update_one({"_id": version["_id"]}, {"$set": {"model_card": model_card(version["categories"])}})
        server = LiveServer(
            {"MONGO_URI": wire_server.uri, "MONGO_DB_NAME": database, "MODEL_SIGNING_KEY": SIGNING_KEY},
            tmp_path_factory.mktemp("browser") / "server.log",
        )
        server.start()
        yield server, admin_key
        server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


def _with_actuals(url: str) -> None:
    """One stored estimation with recorded actual sales, so live accuracy has something to draw."""
    import json
    import urllib.request

    def send(method: str, path: str, body: dict, headers: dict | None = None) -> dict:
        request = urllib.request.Request(
            url + path,
            data=json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    created = send("POST", "/estimations", {"bestseller_rank": 420, "category": "books"})
    send(
        "PATCH",
        f"/estimations/{created['_id']}",
        {"actual_sales": created["estimated_sales"], "actual_period": "2026-10"},
        {"If-Match": created["_etag"]},
    )


def test_inspection_page_loads_and_its_charts_render(live, browser):
    server, admin_key = live
    _with_actuals(server.url)
    page = browser.new_page(viewport={"width": 1280, "height": 1400})

    page.goto(server.url + "/inspect/")
    page.fill("#key", admin_key)
    page.click("#sign-in")
    page.wait_for_selector("#model-card")

    assert "Version 1" in page.inner_text("#model-card")
    curves = page.locator("#chart svg polyline.curve")
    assert curves.count() == len(trained_segments())
    box = curves.first.bounding_box()
    assert box is not None and box["width"] > 150 and box["height"] > 50  # drawn, not just present
    live_bar = page.locator('#accuracy svg rect.bar.live[data-segment="books"]')
    bar = live_bar.bounding_box()
    assert bar is not None and bar["width"] > 100  # 100% within 2x: a full-length bar
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "inspect.png"), full_page=True)
    page.close()


def test_the_browsable_api_form_creates_an_estimation(live, browser):
    server, _ = live
    before = mongo.get_database()["estimations"].count_documents({"category": "electronics"})
    page = browser.new_page(viewport={"width": 1280, "height": 1400})

    page.goto(server.url + "/estimations")
    form = page.locator("#post-object-form form")
    form.locator("input[name=bestseller_rank]").fill("1234")
    form.locator("select[name=category]").select_option("electronics")  # not the first option (books)
    form.locator("input[name=sku]").fill("B0TRIAL-1")
    form.locator("button", has_text="POST").click()
    page.wait_for_selector("text=HTTP 201 Created")

    answer = page.inner_text(".response-info")
    assert '"bestseller_rank": 1234' in answer
    assert '"category": "electronics"' in answer and '"sku": "B0TRIAL-1"' in answer, answer
    assert mongo.get_database()["estimations"].count_documents({"category": "electronics"}) == before + 1
    stored = mongo.get_database()["estimations"].find_one({"sku": "B0TRIAL-1"})
    assert stored is not None and stored["category"] == "electronics"
    # the form on the answer page posts what is chosen there too, and an empty sku is no sku
    form = page.locator("#post-object-form form")
    form.locator("input[name=bestseller_rank]").fill("4321")
    form.locator("select[name=category]").select_option("toys_games")
    form.locator("input[name=sku]").fill("")
    form.locator("button", has_text="POST").click()
    page.wait_for_selector("text=HTTP 201 Created")
    page.wait_for_selector("text=4321")
    answer = page.inner_text(".response-info")
    assert '"category": "toys_games"' in answer and '"sku"' not in answer, answer
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "browsable-api-post.png"), full_page=True)
    page.close()


WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def signed_in(browser, server, admin_key: str, width: str):
    """A page in its own browser context at that width, signed in to /inspect/."""
    columns, rows = WIDTHS[width]
    context = browser.new_context(viewport={"width": columns, "height": rows})
    page = context.new_page()
    page.goto(server.url + "/inspect/")
    page.fill("#key", admin_key)
    page.click("#sign-in")
    page.wait_for_selector("#model-card")
    return context, page


def boxes_apart(boxes: list[dict]) -> bool:
    return all(
        a["x"] + a["width"] <= b["x"] + 0.5
        or b["x"] + b["width"] <= a["x"] + 0.5
        or a["y"] + a["height"] <= b["y"] + 0.5
        or b["y"] + b["height"] <= a["y"] + 0.5
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
    )


def trained_segments() -> list[str]:
    """Version 1's segments ("uk/books"), as the page orders them: by marketplace, us first."""
    return ordered(segments.of_version(mongo.get_database()["models"].find_one({"version": 1})))


def no_sideways_scrolling(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("width", WIDTHS)
def test_the_card_and_one_panel_per_category_as_a_person_sees_them(live, browser, width):
    server, admin_key = live
    expected = segments.keyed(mongo.get_database()["models"].find_one({"version": 1})["model_card"]["per_category"])
    context, page = signed_in(browser, server, admin_key, width)
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"inspect-{width}.png"), full_page=True)
    page.locator("#chart").screenshot(path=str(OUTPUT / f"curves-panels-{width}.png"))
    page.locator("#model-card").screenshot(path=str(OUTPUT / f"card-{width}.png"))

    panels = page.locator("#chart svg.panel")
    names = ordered(list(expected))
    assert panels.count() == len(expected) == len(trained_segments())
    assert len({split_segment(name)[0] for name in names}) >= 3  # the sample model: several marketplaces
    headings = {h.get_attribute("data-marketplace"): h for h in page.locator("#chart h3.marketplace").all()}
    assert list(headings) == list(segments.by_marketplace(names))
    boxes = []
    for index, name in enumerate(names):
        panel = panels.nth(index)
        box = panel.locator("rect.panel-frame").bounding_box()  # the panel's area (its clipped lines reach past)
        title = panel.locator("text.panel-title")
        assert panel.get_attribute("data-segment") == name and title.text_content() == segments.label(name)
        codes = list(headings)
        position = codes.index(split_segment(name)[0])
        heading = headings[codes[position]].bounding_box()
        assert heading["y"] + heading["height"] <= box["y"]  # under its marketplace's heading
        if position + 1 < len(codes):  # and above the next marketplace's
            assert box["y"] + box["height"] <= headings[codes[position + 1]].bounding_box()["y"]
        assert title.is_visible()
        inside = title.bounding_box()
        assert box["x"] <= inside["x"] and inside["x"] + inside["width"] <= box["x"] + box["width"]  # not cut off
        assert box["width"] >= 240  # each panel at a readable size, on a phone too
        boxes.append(box)
    assert boxes_apart(boxes)
    for name, figures in expected.items():
        row = page.locator(f'#card-coverage tr.card-row[data-segment="{name}"]')
        assert row.is_visible()
        assert row.locator("td.training-rows").inner_text() == f"{figures['training_rows']:,}"
        shown = [cell.strip() for cell in row.locator("td.coverage").all_inner_texts()]
        assert shown == [
            "–" if figures["coverage"][band] is None else f"{figures['coverage'][band]:.0%}"
            for band in ("overall", "head", "middle", "tail")
        ]
    section = page.locator("#model-card").bounding_box()
    for table in ("#holdout-metrics", "#card-coverage", "#card-slopes"):
        box = page.locator(table).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTHS[width][0]  # whole, without scrolling it
        assert box["x"] + box["width"] <= section["x"] + section["width"], (table, box, section)  # not clipped
    assert no_sideways_scrolling(page)
    context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_curves_file_scales_to_the_screen(live, browser, width):
    server, admin_key = live
    context, page = signed_in(browser, server, admin_key, width)

    page.goto(server.url + "/inspect/curves.svg")

    panels = page.locator("svg.panel")
    count = len(trained_segments())
    assert panels.count() == count
    boxes = [panels.nth(index).locator("rect.panel-frame").bounding_box() for index in range(count)]
    assert boxes_apart(boxes)
    assert max(box["x"] + box["width"] for box in boxes) <= WIDTHS[width][0] + 0.5
    assert no_sideways_scrolling(page)
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"curves-file-{width}.png"))
    context.close()
