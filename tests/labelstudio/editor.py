"""Driving Label Studio's real editor in headless Chromium (Debian's chromium + chromium-driver,
Selenium): log in, open a task, pick a label, draw with the mouse, tick a choice, submit."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)
# the editor (not the data manager's thumbnails) has finished downloading and shows an image
EDITOR_IMAGE_SHOWN = """
const body = document.body.innerText;
if (body.includes('Downloading image') || !body.includes('Submit')) return false;
return Array.from(document.images).some(
  i => i.complete && i.naturalWidth > 300 && i.getBoundingClientRect().width > 300);
"""


def browser(profile: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=str(DRIVER)))


def until(check: Callable[[], Any], what: str, seconds: float = 60.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)  # polling the browser or the gateway, not timing anything
    return found


def settled(action: Callable[[], None], attempts: int = 5) -> None:
    """Run a browser action again if the editor re-rendered the element under it (React
    replaces nodes while it loads the task and its regions)."""
    from selenium.common.exceptions import StaleElementReferenceException

    for attempt in range(attempts):
        try:
            action()
            return
        except StaleElementReferenceException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)  # let the re-render finish, then find the element anew


class Editor:
    """One annotator's browser on one Label Studio project."""

    def __init__(self, driver: Any, url: str, project_id: int) -> None:
        self.driver, self.url, self.project_id = driver, url, project_id

    def login(self, username: str, password: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.get(f"{self.url}/user/login/")
        self.driver.find_element(By.NAME, "email").send_keys(username)
        self.driver.find_element(By.NAME, "password").send_keys(password)
        self.driver.find_element(By.CSS_SELECTOR, "form [type=submit]").click()
        until(lambda: "/user/login" not in self.driver.current_url, "login")

    def open(self, task_id: int) -> None:
        self.driver.get(f"{self.url}/projects/{self.project_id}/data?task={task_id}")
        until(lambda: self.driver.execute_script(EDITOR_IMAGE_SHOWN), "the image", seconds=120)
        until(self._canvas, "the drawing canvas")

    def _canvas(self) -> Any:
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.by import By

        canvases = self.driver.find_elements(By.CSS_SELECTOR, "canvas")
        try:
            shown = [c for c in canvases if c.size["width"] > 300 and c.size["height"] > 100]
        except StaleElementReferenceException:  # re-rendered meanwhile: look again
            return None
        return shown[-1] if shown else None

    def pick_label(self, name: str) -> None:
        from selenium.webdriver.common.by import By

        def click() -> None:
            labels = self.driver.find_elements(By.CSS_SELECTOR, ".lsf-label__text")
            (label,) = [e for e in labels if e.text.strip() == name]
            label.click()

        settled(click)

    def _at(self, fx: float, fy: float) -> tuple[int, int]:
        """Offset from the canvas centre of a point given as fractions of the image."""
        size = self._canvas().size
        return int((fx - 0.5) * size["width"]), int((fy - 0.5) * size["height"])

    def drag(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        settled(lambda: self._drag(start, end))

    def _drag(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        from selenium.webdriver.common.action_chains import ActionChains

        canvas = self._canvas()
        (x0, y0), (x1, y1) = self._at(*start), self._at(*end)
        ActionChains(self.driver).move_to_element_with_offset(
            canvas, x0, y0
        ).click_and_hold().move_to_element_with_offset(
            canvas, (x0 + x1) // 2, (y0 + y1) // 2
        ).move_to_element_with_offset(canvas, x1, y1).release().perform()

    def click_polygon(self, points: list[tuple[float, float]]) -> None:
        """Click each vertex, then the first again: Label Studio closes the polygon."""
        from selenium.webdriver.common.action_chains import ActionChains

        for fx, fy in [*points, points[0]]:
            settled(
                lambda fx=fx, fy=fy: (
                    ActionChains(self.driver)
                    .move_to_element_with_offset(self._canvas(), *self._at(fx, fy))
                    .click()
                    .perform()
                )
            )
            time.sleep(0.2)  # the editor debounces clicks into vertices (not timing a result)

    def tick(self, choice: str) -> None:
        from selenium.webdriver.common.by import By

        path = f"//*[normalize-space(text())='{choice}']"
        settled(lambda: self.driver.find_elements(By.XPATH, path)[0].click())

    def body(self) -> str:
        return str(self.driver.execute_script("return document.body.innerText"))

    def submit(self) -> None:
        from selenium.webdriver.common.by import By

        (button,) = self.driver.find_elements(By.XPATH, "//button[normalize-space()='Submit']")
        button.click()

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))
