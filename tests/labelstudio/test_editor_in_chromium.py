"""Headless Chromium opens a synced task in Label Studio's editor: the redacted image loads
from the gateway's signed URL with no CORS or auth error, shown by the browser's own network
log and by a screenshot (Debian's chromium + chromium-driver, driven by Selenium)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from PIL import Image

from gateway.labelstudio.sync import sync_dataset
from tests.labelstudio.editor import CHROMIUM, DRIVER, EDITOR_IMAGE_SHOWN, browser, until
from tests.labelstudio.fixtures import ADMIN
from tests.labelstudio.helpers import project_tasks

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Debian's chromium and chromium-driver (scripts/setup.sh installs them)",
)


def _network_events(driver: Any) -> list[dict[str, Any]]:
    return [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]


@pytest.mark.timeout(240)
def test_label_studio_editor_loads_the_redacted_image(
    ctx, dataset, released, destination, labelstudio, gateway_server, tmp_path
) -> None:
    from selenium.webdriver.common.by import By

    report = sync_dataset(
        ctx, dataset_ref=dataset.name, destination_ref=destination.name, actor=ADMIN
    )
    task = project_tasks(labelstudio, report.project_id)[0]
    image_url = task["data"]["image"]
    driver = browser(tmp_path / "profile")
    events: list[dict[str, Any]] = []
    try:
        driver.get(f"{labelstudio.url}/user/login/")
        driver.find_element(By.NAME, "email").send_keys(labelstudio.username)
        driver.find_element(By.NAME, "password").send_keys(labelstudio.password)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit], form [type=submit]").click()
        until(lambda: "/user/login" not in driver.current_url, "login")
        driver.get(f"{labelstudio.url}/projects/{report.project_id}/data?task={task['id']}")

        def image_loaded() -> bool:
            events.extend(_network_events(driver))
            return bool(driver.execute_script(EDITOR_IMAGE_SHOWN))

        until(image_loaded, "the redacted image in the editor", seconds=120)
        shot = tmp_path / "editor.png"
        driver.save_screenshot(str(shot))
        events.extend(_network_events(driver))
        console = driver.get_log("browser")
    finally:
        driver.quit()

    assert any(_url(e) == image_url for e in events), "the editor's image was not fetched"
    ours = [e for e in events if _url(e).startswith(gateway_server)]  # every gateway fetch
    responses = [e["params"]["response"] for e in ours if e["method"] == "Network.responseReceived"]
    assert responses, "the browser never fetched the gateway URL"
    assert all(r["status"] == 200 for r in responses), [r["status"] for r in responses]
    assert all(r["mimeType"] == "image/jpeg" for r in responses)
    ids = {e["params"]["requestId"] for e in ours}
    failures = [
        e
        for e in events
        if e["method"] == "Network.loadingFailed" and e["params"]["requestId"] in ids
    ]
    assert failures == []  # no CORS block, no auth error, no abort
    gateway_errors = [m for m in console if "cors" in m["message"].lower()]
    assert gateway_errors == []
    picture = Image.open(io.BytesIO(shot.read_bytes()))
    assert picture.size[0] >= 1000 and len(picture.getcolors(1 << 20) or []) > 50  # not blank


def _url(event: dict[str, Any]) -> str:
    params = event.get("params", {})
    return str(params.get("response", {}).get("url") or params.get("request", {}).get("url") or "")
