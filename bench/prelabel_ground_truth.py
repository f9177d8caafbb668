"""Persons and vehicles labelled in Label Studio's own editor: the pre-label ground truth.

    .venv/bin/python bench/prelabel_ground_truth.py session   # LS + Chromium, waits for commands
    .venv/bin/python bench/prelabel_ground_truth.py do '{"op": "open", "task": 3}'
    .venv/bin/python bench/prelabel_ground_truth.py export    # LS export -> bench/data/

`session` starts a real local Label Studio (its own venv, loopback, `LocalLabelStudio`) with a
project labelling `Person` / `Vehicle` with `RectangleLabels`, uploads the 39 CC0/MIT photos named
in bench/data/prelabels_hand_boxes_by_eye.json (found by SHA-256 in gateway/demo_photos and
../shared/data; the AGPL plate set is never read) and gives each task the boxes drawn by eye
before any detector ran as its starting point (a Label Studio prediction with model_version
`by-eye-before-any-detector`; no detector output is ever imported). It then opens headless
Chromium on the editor and executes commands one at a time, each written by `do`:

- `{"op": "open", "task": i}`: open ground-truth task i (1-based, file order) in the editor;
- `{"op": "draw", "label": "Person", "box": [x0, y0, x1, y1]}`: pick the label, drag with the
  mouse from (x0, y0) to (x1, y1), given as fractions of the image;
- `{"op": "drawpx", "label": "Person", "px": [x0, y0, x1, y1]}`: the same, the corners given in
  pixels of the last numbered screenshot (`*-numbered.png`: the editor's image part, each box
  numbered as in the editor's region list);
- `{"op": "delete", "region": k}`: click region k (1-based, the editor's region list) and press
  Backspace;
- `{"op": "shot"}`: screenshot of the editor; `{"op": "submit"}`: press Submit (or Update);
- `{"op": "quit"}`: close Chromium and stop Label Studio (its data stays in bench/out/gt/ls/).

While a box is drawn all regions are hidden with the region list's eye button (a drag that starts
on a region would move that region instead of drawing).

Every command and its outcome go to bench/data/prelabels_editor_review.jsonl: the record of what
was done in the editor. Each command answers with the editor's screenshot (bench/out/gt/) and
the regions the editor holds (label and box in image fractions, read from the page).

`export` asks Label Studio for its own JSON export, replaces each image URL by
`sha256:<hex>` (keeping the source path as `data.file`) and writes
bench/data/prelabels_ground_truth.json.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BY_EYE = REPO / "bench" / "data" / "prelabels_hand_boxes_by_eye.json"
EXPORT = REPO / "bench" / "data" / "prelabels_ground_truth.json"
REVIEW_LOG = REPO / "bench" / "data" / "prelabels_editor_review.jsonl"
WORK = REPO / "bench" / "out" / "gt"
STATE = WORK / "state.json"
CONTROL = WORK / "control"
MODEL_VERSION = "by-eye-before-any-detector"
CONFIG = """<View>
  <Image name="image" value="$image" zoom="true" zoomControl="true"/>
  <RectangleLabels name="label" toName="image" strokeWidth="2" opacity="0.05">
    <Label value="Person" background="#00ff00"/><Label value="Vehicle" background="#ff00ff"/>
  </RectangleLabels>
</View>"""
# where the editor shows the image (it can be larger than the drawing canvas and clipped by it)
IMAGE_RECT_JS = """
const c = Array.from(document.querySelectorAll('canvas')).filter(c => c.width > 300).pop();
const cr = c.getBoundingClientRect();
const img = Array.from(document.images).filter(i => {
  const r = i.getBoundingClientRect();
  return r.width > 300 && r.left < cr.right && r.right > cr.left && r.top < cr.bottom;
}).pop();
const ir = img.getBoundingClientRect();
return {img: [ir.left, ir.top, ir.width, ir.height],
        canvas: [cr.left, cr.top, cr.width, cr.height]};
"""
REGIONS_JS = """
const s = window.Htx && window.Htx.annotationStore && window.Htx.annotationStore.selected;
if (!s) return null;
return s.regions.map(r => ({label: r.labels && r.labels[0], x: r.x, y: r.y,
                            w: r.width, h: r.height, selected: r.selected}));
"""


def log(entry: dict[str, Any]) -> None:
    entry = {"at": datetime.now(UTC).isoformat(timespec="seconds"), **entry}
    with REVIEW_LOG.open("a") as f:
        f.write(json.dumps(entry) + "\n")


def by_eye_tasks() -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = json.loads(BY_EYE.read_text())
    return tasks


def find_photos(digests: set[str]) -> dict[str, Path]:
    from bench.prelabel_accuracy import find_images

    return find_images(digests)


def setup_project(server: Any) -> dict[str, Any]:
    tasks = by_eye_tasks()
    paths = find_photos({t["data"]["image"].removeprefix("sha256:") for t in tasks})
    headers = {"Authorization": f"Token {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=120) as api:
        spec = {"title": "Pre-label ground truth", "label_config": CONFIG,
                "model_version": MODEL_VERSION, "show_collab_predictions": True}  # fmt: skip
        project = api.post("/api/projects", json=spec)
        project.raise_for_status()
        pid = project.json()["id"]
        for t in tasks:
            digest = t["data"]["image"].removeprefix("sha256:")
            files = {"file": (f"{digest[:16]}.jpg", paths[digest].read_bytes(), "image/jpeg")}
            api.post(f"/api/projects/{pid}/import", files=files).raise_for_status()
        listed = api.get("/api/tasks", params={"project": pid, "page_size": 200}).json()
        listed = listed["tasks"] if isinstance(listed, dict) else listed
        by_prefix = {str(x["data"]["image"]).rsplit("-", 1)[-1][:16]: x["id"] for x in listed}
        ids = []
        for t in tasks:
            digest = t["data"]["image"].removeprefix("sha256:")
            task_id = by_prefix[digest[:16]]
            body = {"task": task_id, "result": t["annotations"][0]["result"],
                    "model_version": MODEL_VERSION, "score": 1.0}  # fmt: skip
            api.post("/api/predictions", json=body).raise_for_status()
            ids.append({"task_id": task_id, "sha256": digest, "file": t["data"]["file"]})
    return {"project": pid, "tasks": ids}


class Session:
    def __init__(self, server: Any, state: dict[str, Any]) -> None:
        from tests.labelstudio.editor import Editor, browser

        self.server, self.state = server, state
        shutil.rmtree(WORK / "chromium", ignore_errors=True)  # a fresh profile: log in anew
        self.driver = browser(WORK / "chromium")
        self.driver.set_window_size(1600, 1100)
        self.editor = Editor(self.driver, server.url, state["project"])
        self.editor.login(server.username, server.password)
        self.task: int | None = None
        self.crop = (0.0, 0.0, 1.0, 1.0)
        self.shots = 0

    def drag(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        """Press, move and release the mouse over the editor's image (fractions of the image)."""
        from selenium.webdriver.common.action_chains import ActionChains

        rects = self.driver.execute_script(IMAGE_RECT_JS)
        (ix, iy, iw, ih), (cx, cy, cw, ch) = rects["img"], rects["canvas"]

        def at(fx: float, fy: float) -> tuple[int, int]:  # offset from the canvas centre
            # the editor can show the image a little larger than its canvas: a box at the
            # image's border is drawn to the canvas's border (the mouse cannot go further)
            x = min(max(ix + fx * iw, cx + 1), cx + cw - 2, ix + iw - 1)
            y = min(max(iy + fy * ih, cy + 1), cy + ch - 2, iy + ih - 1)
            return round(x - cx - cw / 2), round(y - cy - ch / 2)

        (ax, ay), (bx, by) = at(*start), at(*end)
        canvas = self.editor._canvas()
        ActionChains(self.driver).move_to_element_with_offset(canvas, ax, ay).click_and_hold(
        ).move_to_element_with_offset(canvas, (ax + bx) // 2, (ay + by) // 2
        ).move_to_element_with_offset(canvas, bx, by).release().perform()  # fmt: skip

    def show_regions(self, shown: bool) -> None:
        """Click the region list's eye button until every region is shown (or hidden)."""
        from selenium.webdriver.common.by import By

        hidden_js = "return window.Htx.annotationStore.selected.regions.map(r => r.hidden)"
        for _ in range(4):
            hidden = self.driver.execute_script(hidden_js)
            if not any(hidden) if shown else all(hidden):
                return
            eye = "[aria-label='Hide all regions'], [aria-label='Show all regions']"
            self.driver.find_element(By.CSS_SELECTOR, eye).click()
            time.sleep(0.3)  # the editor re-renders the regions
        raise RuntimeError("the regions did not follow the eye button")

    def region_item(self, k: int) -> Any:
        """Region k's row in the editor's region list (a virtual list: scrolled until shown)."""
        from selenium.webdriver.common.by import By

        scroll = "document.querySelector('.lsf-outliner-tree').parentElement.scrollTop = "
        for top in range(0, 4000, 150):
            for item in self.driver.find_elements(By.CSS_SELECTOR, ".lsf-outliner-item"):
                index = item.find_elements(By.CSS_SELECTOR, ".lsf-outliner-item__index")
                if index and index[0].text.strip() == str(k):
                    return item
            self.driver.execute_script(scroll + str(top))
            self.driver.execute_script(
                "document.querySelectorAll('.lsf-outliner-tree *').forEach("
                "e => { if (e.scrollHeight > e.clientHeight) e.scrollTop = " + str(top) + "; })"
            )
            time.sleep(0.2)  # the list renders the rows now in view
        raise LookupError(f"region {k} is not in the editor's list")

    def regions(self) -> list[dict[str, Any]]:
        found = self.driver.execute_script(REGIONS_JS) or []
        return [{**r, "x": r["x"] / 100, "y": r["y"] / 100, "w": r["w"] / 100,
                 "h": r["h"] / 100} for r in found]  # fmt: skip

    def shot(self) -> str:
        import cv2

        self.shots += 1
        path = WORK / "shots" / f"task{self.task:02d}-{self.shots:03d}.png"
        self.editor.screenshot(path)
        # the canvas part, with the region numbers of the editor's list written beside each box
        rects = self.driver.execute_script(IMAGE_RECT_JS)
        (ix, iy, iw, ih), (cx, cy, cw, ch) = rects["img"], rects["canvas"]
        img = cv2.imread(str(path))
        x0, y0 = int(max(ix, cx)), int(max(iy, cy))
        x1, y1 = int(min(ix + iw, cx + cw)), int(min(iy + ih, cy + ch))
        crop = img[y0:y1, x0:x1].copy()
        self.crop = (x0 - ix, y0 - iy, iw, ih)  # maps the picture's pixels to the image
        for k, r in enumerate(self.regions(), 1):
            px, py = int(ix + r["x"] * iw - x0), int(iy + r["y"] * ih - y0)
            cv2.putText(crop, str(k), (px + 2, py + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        (0, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
        numbered = path.with_name(path.stem + "-numbered.png")
        cv2.imwrite(str(numbered), crop)
        return str(numbered)

    def run(self, cmd: dict[str, Any]) -> dict[str, Any]:
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        from tests.labelstudio.editor import until

        op = cmd["op"]
        if op == "open":
            self.task = int(cmd["task"])
            task_id = self.state["tasks"][self.task - 1]["task_id"]
            self.driver.get(
                f"{self.server.url}/projects/{self.state['project']}/data?task={task_id}"
            )
            until(lambda: self.editor._canvas() is not None, "the canvas", seconds=120)
            until(lambda: self.driver.execute_script(REGIONS_JS) is not None, "the store")
            self.show_regions(True)
            time.sleep(1.5)  # the editor draws its regions after the store fills (not a timing)
        elif op == "drawpx":  # a box given in pixels of the last numbered screenshot
            dx, dy, iw, ih = self.crop
            x0, y0, x1, y1 = cmd["px"]
            box = [(x0 + dx) / iw, (y0 + dy) / ih, (x1 + dx) / iw, (y1 + dy) / ih]
            return self.run({"op": "draw", "label": cmd["label"], "box": box})
        elif op == "draw":
            self.driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
            chosen = self.driver.find_elements(By.CSS_SELECTOR, ".lsf-label_selected")
            if not any(e.text.strip().startswith(cmd["label"]) for e in chosen):
                for e in chosen:  # another label is chosen: unchoose it first
                    e.click()
                self.editor.pick_label(cmd["label"])
            x0, y0, x1, y1 = cmd["box"]
            before = len(self.regions())
            # regions hidden while drawing: a drag that starts on a region would move it
            self.show_regions(False)
            self.drag((x0, y0), (x1, y1))
            self.show_regions(True)
            until(lambda: len(self.regions()) == before + 1, "the new region", seconds=10)
            self.driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
        elif op == "delete":
            before = len(self.regions())
            self.region_item(int(cmd["region"])).click()
            ActionChains(self.driver).send_keys(Keys.BACKSPACE).perform()
            until(lambda: len(self.regions()) == before - 1, "the region gone", seconds=10)
        elif op == "submit":
            buttons = self.driver.find_elements(
                By.XPATH, "//button[normalize-space()='Submit' or normalize-space()='Update']"
            )
            buttons[0].click()
            time.sleep(2)  # the editor posts the annotation; checked below through the API
        elif op == "shot":
            pass
        else:
            raise ValueError(f"unknown op {op}")
        regions = self.regions()
        out = {"task": self.task, "cmd": cmd, "regions": len(regions)}
        if op == "submit":
            out["saved"] = self.saved()
        log(out)
        return {**out, "shot": self.shot(), "region_list": regions}

    def saved(self) -> int:
        headers = {"Authorization": f"Token {self.server.token}"}
        task_id = self.state["tasks"][(self.task or 1) - 1]["task_id"]
        got = httpx.get(f"{self.server.url}/api/tasks/{task_id}/annotations", headers=headers)
        got.raise_for_status()
        return sum(len(a["result"]) for a in got.json()[-1:])


def session() -> None:
    from gateway.labelstudio.server import LocalLabelStudio

    WORK.mkdir(parents=True, exist_ok=True)
    CONTROL.mkdir(exist_ok=True)
    saved = json.loads(STATE.read_text()) if STATE.exists() else None
    server = LocalLabelStudio(data_dir=WORK / "ls")
    if saved:
        server.port, server.password, server.token = (saved["port"], saved["password"],
                                                      saved["token"])  # fmt: skip
    server.start()
    try:
        if not saved:
            saved = {**setup_project(server), "port": server.port,
                     "password": server.password, "token": server.token}  # fmt: skip
            STATE.write_text(json.dumps(saved, indent=1))
        sess = Session(server, saved)
        print("ready", flush=True)
        while True:
            for cmd_file in sorted(CONTROL.glob("*.cmd")):
                cmd = json.loads(cmd_file.read_text())
                if cmd.get("op") == "quit":
                    cmd_file.with_suffix(".out").write_text("{}")
                    cmd_file.unlink()
                    sess.driver.quit()
                    return
                try:
                    result = sess.run(cmd)
                except Exception as exc:  # answered to the operator, then the next command
                    result = {"error": f"{type(exc).__name__}: {exc}"}
                cmd_file.with_suffix(".tmp").write_text(json.dumps(result, indent=1))
                cmd_file.with_suffix(".tmp").rename(cmd_file.with_suffix(".out"))
                cmd_file.unlink()
            time.sleep(0.2)  # polling the control directory, not timing anything
    finally:
        server.stop()


def do(raw: str) -> None:
    CONTROL.mkdir(parents=True, exist_ok=True)
    name = CONTROL / f"{time.time_ns()}"
    name.with_suffix(".new").write_text(raw)
    name.with_suffix(".new").rename(name.with_suffix(".cmd"))  # whole, never half-written
    out = name.with_suffix(".out")
    deadline = time.monotonic() + 300
    while not out.exists():
        if time.monotonic() > deadline:
            raise SystemExit("no answer from the session")
        time.sleep(0.2)  # polling for the session's answer
    result = json.loads(out.read_text())
    out.unlink()
    regions = result.pop("region_list", [])
    print(json.dumps(result))
    for k, r in enumerate(regions, 1):
        print(f"{k:3d} {r['label']:8s} x0={r['x']:.3f} y0={r['y']:.3f} "
              f"x1={r['x'] + r['w']:.3f} y1={r['y'] + r['h']:.3f}")  # fmt: skip


def export() -> None:
    from gateway.labelstudio.server import LocalLabelStudio

    saved = json.loads(STATE.read_text())
    server = LocalLabelStudio(data_dir=WORK / "ls", port=saved["port"],
                              password=saved["password"], token=saved["token"])  # fmt: skip
    headers = {"Authorization": f"Token {saved['token']}"}
    url = f"{server.url}/api/projects/{saved['project']}/export"
    running = True
    try:
        got = httpx.get(url, params={"exportType": "JSON"}, headers=headers, timeout=120)
    except httpx.TransportError:
        running = False
    if not running:
        server.start()
    try:
        got = httpx.get(url, params={"exportType": "JSON"}, headers=headers, timeout=120)
        got.raise_for_status()
    finally:
        if not running:
            server.stop()
    by_id = {t["task_id"]: t for t in saved["tasks"]}
    tasks = sorted(got.json(), key=lambda t: [x["task_id"] for x in saved["tasks"]].index(t["id"]))
    for t in tasks:
        known = by_id[t["id"]]
        t["data"] = {"image": f"sha256:{known['sha256']}", "file": known["file"]}
        for key in ("file_upload",):
            t.pop(key, None)
        if not t["annotations"]:
            raise SystemExit(f"task {t['id']} ({known['file']}) has no annotation from the editor")
    EXPORT.write_text(json.dumps(tasks, indent=1) + "\n")
    print(f"{EXPORT.relative_to(REPO)}: {len(tasks)} tasks")


if __name__ == "__main__":
    {"session": lambda: session(), "export": lambda: export(),
     "do": lambda: do(sys.argv[2])}[sys.argv[1]]()  # fmt: skip
