"""The live page in a real browser: headless Chromium (Debian's, driven by Selenium through
Debian's chromedriver) on `GET /` of a user-state fed by a running pipeline (the generator's
visits, the seed's join, the sessions query). The page must show what `/v1/vips/active` says
(who, their clicks), tick the time on site, scroll the actions, chart the on-site counts, and
come back by itself after user-state restarts. It saves the README's screenshot."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as ChromeService

from tests.support.eventually import eventually
from tests.support.pipeline import Names, Pipeline
from tests.support.services import Service

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "images" / "live-page.png"
USER_STATE_ENV = {"ACTIVITY_SAMPLE_SECONDS": "1"}


def _binary(variable: str, *names: str) -> str:
    for candidate in (os.environ.get(variable), *map(shutil.which, names)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        f"no {names[0]} here (nor {variable}): `scripts/observability.sh install` installs "
        "Debian's chromium and chromium-driver, as .ci/run does"
    )


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("CHROMIUM_BINARY", "chromium", "chromium-browser")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1400,1000")
    service = ChromeService(executable_path=_binary("CHROMEDRIVER", "chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    yield driver
    driver.quit()


def _api(user_state: Service) -> dict[str, Any]:
    with urllib.request.urlopen(user_state.url + "/v1/vips/active", timeout=10) as response:
        return dict(json.loads(response.read()))


_PAGE_STATE = """
return {
  status: document.getElementById("status").textContent,
  count: document.getElementById("count").textContent,
  vips: [...document.querySelectorAll("#vips tbody tr")].map((tr) => ({
    user: tr.dataset.user,
    clicks: tr.querySelector(".clicks").textContent,
    seconds: Number(tr.querySelector(".on-site").dataset.seconds),
  })),
  engage: [...document.querySelectorAll("#engage li")].map((li) => li.dataset.user),
  actions: [...document.querySelectorAll("#actions li")].map((li) => li.dataset.user),
  chart: document.getElementById("chart").dataset.counts || "",
};
"""


def _page(driver: webdriver.Chrome) -> dict[str, Any]:
    return dict(driver.execute_script(_PAGE_STATE))


def _matches_api(driver: webdriver.Chrome, user_state: Service) -> bool:
    """The page's VIPs and their clicks are the API's (both move, so asked until they meet)."""
    api = _api(user_state)
    page = _page(driver)
    shown = {v["user"]: int(v["clicks"]) for v in page["vips"]}
    engage = {
        v["user_id"] for v in api["vips"] if (v["carts"] or 0) > 0 and (v["checkouts"] or 0) == 0
    }
    return (
        api["count"] > 0
        and shown == {v["user_id"]: v["clicks"] for v in api["vips"]}
        and int(page["count"]) == api["count"]
        and set(page["engage"]) == engage
    )


def _start_user_state(pipeline: Pipeline, port: int | None = None, n: int = 1) -> Service:
    service = pipeline.start("user-state", port=port, log_name=f"user-state-{n}", **USER_STATE_ENV)
    service.wait_ready()
    return service


def test_the_live_page_shows_the_vips_on_the_site_and_survives_a_restart(
    names: Names, pipeline: Pipeline, browser: webdriver.Chrome
) -> None:
    user_state = _start_user_state(pipeline)
    pipeline.start_enricher(user_state, ENRICHER_DELIVERY="exactly_once").wait_ready()
    pipeline.start_sessions_query(ENRICHER_DELIVERY="exactly_once")
    # Visits on a clock 60 times the wall clock, as `make run` has them: a session gap is 30 s.
    pipeline.start(
        "generator",
        GENERATOR_USERS="500",
        GENERATOR_TIME_SCALE="60",
        GENERATOR_RATE="60",
        GENERATOR_CLICKS="0",
        GENERATOR_UNKNOWN_USER_SHARE="0",
    )
    browser.get(user_state.url + "/")
    assert browser.title == "VIPs on the site now"
    eventually(
        lambda: _matches_api(browser, user_state),
        timeout=180,
        interval=0.5,
        message=lambda: f"page {_page(browser)}\napi {_api(user_state)}",
    )
    page = _page(browser)
    assert page["status"] == "live"

    # The time on site ticks, and is never less than the API's first-to-last click.
    first = page["vips"][0]
    api_seconds = {v["user_id"]: v["seconds_on_site"] for v in _api(user_state)["vips"]}
    if first["user"] in api_seconds:
        assert first["seconds"] >= int(api_seconds[first["user"]])
    time.sleep(2.5)
    later = {v["user"]: v["seconds"] for v in _page(browser)["vips"]}
    if first["user"] in later:
        assert later[first["user"]] >= first["seconds"] + 2

    # Actions scroll in; the chart's last sample is the API's count of a moment ago.
    eventually(lambda: len(_page(browser)["actions"]) >= 10, timeout=60)
    eventually(
        lambda: _page(browser)["chart"].split(",")[-1] == str(_api(user_state)["count"]),
        timeout=60,
        interval=0.5,
    )
    assert len(_page(browser)["chart"].split(",")) >= 2

    # user-state restarts on the same port: the page notices, reconnects and catches up alone.
    port = user_state.port
    assert user_state.terminate() == 0
    eventually(lambda: _page(browser)["status"] != "live", timeout=30, interval=0.1)
    user_state = _start_user_state(pipeline, port=port, n=2)
    eventually(
        lambda: _page(browser)["status"] == "live" and _matches_api(browser, user_state),
        timeout=120,
        interval=0.5,
        retry_on=(OSError,),
        message=lambda: f"page {_page(browser)}\napi {_api(user_state)}",
    )
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))
