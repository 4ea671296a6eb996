"""A real browser completes a short study by keyboard: headless Chromium (Debian packages
chromium and chromium-driver, as tests/test_browser.py) against `python -m bench.study serve`
on 127.0.0.1; then the admin page and the results report show the votes it cast."""

from __future__ import annotations

import pytest
from study_fixtures import Server, make_study, saved_run
from test_browser import browser  # noqa: F401  (the shared headless Chromium fixture)

from bench.study.__main__ import main as study_main

pytestmark = pytest.mark.browser
TRIALS = 3


def wait_for(driver, script: str, *arguments, seconds: float = 20):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds).until(lambda d: d.execute_script(script, *arguments))


def press(driver, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(key).perform()


def test_a_short_study_by_keyboard_then_the_votes_on_the_admin_and_results_pages(
    browser,  # noqa: F811
    tmp_path_factory,
    tmp_path,
):
    study = make_study(saved_run(tmp_path_factory), tmp_path / "study", images=TRIALS)
    with Server(study) as server:
        base = f"http://127.0.0.1:{server.port}"
        browser.get(base + "/")
        assert "semantic structure" in browser.find_element("id", "criteria").text
        press(browser, "\n")  # the Start button has the focus
        keys = ["1", "2", "3"]
        for step in range(TRIALS):
            wait_for(
                browser,
                "const t = document.getElementById('trial'); return t && !t.classList.contains('loading')",
            )
            progress = browser.execute_script("return document.getElementById('progress').value")
            assert progress == step
            trial = browser.execute_script("return document.getElementById('trial').dataset.trial")
            press(browser, keys[step])
            wait_for(
                browser,
                "const t = document.getElementById('trial'); return !t || t.dataset.trial !== arguments[0]",
                trial,
            )
        wait_for(browser, "return document.getElementById('thanks') !== null")
        assert f"Your {TRIALS} answers are saved" in browser.find_element("tag name", "body").text
        browser.get(base + "/")  # coming back: the study knows this browser is done
        assert f"{TRIALS} of {TRIALS} done" in browser.find_element("id", "start").text
        browser.get(f"{base}/admin?token={server.token}")
        assert f"1 voters (1 finished), {TRIALS} votes" in browser.find_element("id", "counts").text
        chosen = browser.execute_script(
            "return Array.from(document.querySelectorAll('#admin-wins .chosen')).map(c => +c.textContent)"
        )
        assert sum(chosen) == TRIALS
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == [], errors
    assert study_main(["results", str(study)]) == 0
    browser.get((study / "report.html").as_uri())
    assert f"{TRIALS} votes from 1 voters" in browser.find_element("id", "study-counts").text
    rows = browser.execute_script("return document.querySelectorAll('#study-win-rates tbody tr').length")
    assert rows == 3
    positions = browser.execute_script(
        "return Array.from(document.querySelectorAll('#study-positions tbody tr'))"
        ".map(r => +r.cells[2].textContent)"
    )
    assert positions == [1, 1, 1]  # keys 1, 2, 3: one vote at each screen position
