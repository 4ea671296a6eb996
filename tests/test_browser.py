"""The report in a real browser: headless Chromium opens it from file:// (needs the Debian
packages chromium and chromium-driver; .ci/run installs them)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bench.run import main as run_main

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver must be installed in CI (.ci/run installs them)")
        pytest.skip("headless Chromium is not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--window-size=1300,900",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("browser-report")
    arguments = [
        "--methods",
        "telea,patchmatch,lbam@full,lbam@unlearned",
        "--allow-untrained",
        "--option",
        "lbam@full.width=0.0625",
        "--option",
        "lbam@unlearned.width=0.0625",
        "--option",
        "lbam@unlearned.ablation='unlearned'",
        "--size",
        "128",
        "--masks-per-bucket",
        "1",
        "--no-progress",
        "--out",
        str(folder / "runs" / "browser <run>"),
        "--report",
        str(folder / "reports" / "index.html"),
    ]
    assert run_main(arguments) == 0
    return folder / "reports" / "index.html"


def test_report_opens_from_file_with_every_image_and_no_console_error(browser, report):
    for page in (report, next((report.parent / "runs").glob("*.html"))):
        browser.get(page.as_uri())
        broken = browser.execute_script(
            "return Array.from(document.images)"
            ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
        )
        assert broken == [], broken
        assert browser.execute_script("return document.images.length") >= 4 * 5 + 4 + 2
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == [], errors


def test_report_tables_have_the_expected_rows_and_a_screenshot_is_written(browser, report):
    browser.get(report.as_uri())
    count = "return document.querySelectorAll(arguments[0]).length"
    assert browser.execute_script(count, "#table1-table tbody tr") == 12
    assert browser.execute_script(count, "#table2-table tbody tr") == 2
    assert (
        browser.execute_script(count, "#paired-table tbody tr") == 2 * 3
    )  # lbam@full vs 3 others × 2 metrics
    assert browser.execute_script(count, "#not-comparable li") >= 1
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1300, min(int(height) + 50, 12000))
    screenshot = report.parent / "screenshots" / "report.png"  # beside the report, in a temporary folder
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000
