"""The HTML report of the trained world, rendered in headless Chromium (Debian's, driven by Playwright): every
section with its charts, every image decoded, no console error and no request leaving the file."""

from __future__ import annotations

import shutil

import pytest

from audiencelake.report.html import report_path
from audiencelake.report.sections import SECTIONS

pytestmark = pytest.mark.browser
# as the machine's notes advise for a closed network: no background connections, a fresh profile
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


SILVER_TABLES = ("clickstream_events", "orders", "crm_profiles", "campaign_touches", "social_interactions")


def test_report_renders_every_section_and_chart_in_chromium(models_world, tmp_path):
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: `make setup` installs it"
    path = report_path(models_world["lake"], models_world["ctx"].run.run_id)  # written by the report stage
    html = path.read_text()
    assert "<script" not in html and 'src="http' not in html and 'href="http' not in html
    errors, requests = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri(), wait_until="load")
        for key, title, _ in SECTIONS:
            section = page.locator(f"section#{key}")
            assert section.is_visible(), key
            assert section.locator("h2").inner_text() == title
            assert section.locator(".missing").count() == 0, section.locator(".missing").all_inner_texts()
            charts = section.locator("figure.chart svg, figure.chart img")
            assert charts.count() >= 1, key
            box = charts.first.bounding_box()
            assert box and box["width"] > 200 and box["height"] > 100, (key, box)
        # every silver table's latest whole-table validation is listed, not only the last one validated
        quality = page.locator("section#quality table").first.inner_text()
        assert all(t in quality for t in SILVER_TABLES), quality[:300]
        assert page.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        assert page.locator("figure.chart img").count() >= 3  # the champions' ROC, gains and calibration plots
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
