"""Screenshots of Label Studio's editor showing the new pre-labels (docs/screenshots/).

    PYTHONPATH=. .venv/bin/python bench/prelabel_screenshots.py

A crowd photo (faces-masks, CC0) and a night dashcam frame (MIT) go through a throw-away
gateway and the real isolated redaction engine; the real ML backend app (default sources:
persons + vehicles) answers /predict for them; a real local Label Studio gets the redacted
image and that prediction, and headless Chromium opens the editor on each task.
"""

from __future__ import annotations

import base64
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import cv2  # noqa: E402
import httpx  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "docs" / "screenshots"
SHARED = next(
    (p for p in (REPO.parent / "shared" / "data", Path("/work/shared/data")) if p.is_dir()),
    REPO.parent / "shared" / "data",
)
PHOTOS = {
    "crowd": SHARED / "faces-masks" / "images" / "maksssksksss518.jpg",
    "night": REPO / "gateway" / "demo_photos" / "dashcam_nightride_type3_001_t386.jpg",
}
CONFIG = """<View>
  <Image name="image" value="$image" zoom="true"/>
  <RectangleLabels name="box" toName="image">
    <Label value="Person" background="#2ecc71"/><Label value="Vehicle" background="#3498db"/>
  </RectangleLabels>
  <PolygonLabels name="outline" toName="image" opacity="0.25">
    <Label value="Person" background="#f1c40f"/>
  </PolygonLabels>
</View>"""


def predictions(paths: list[Path]) -> tuple[list[dict[str, Any]], list[bytes]]:
    """The real /predict answer and the redacted image, for each photo."""
    from fastapi.testclient import TestClient

    import bench.ml_backend as mlb
    from gateway.core.db import transaction
    from gateway.core.models import Asset
    from ml_backend.app import create_app
    from ml_backend.settings import MLBackendSettings
    from ml_backend.sources.loading import load_sources
    from redaction.io import decode_image
    from redaction.policy import Limits

    mlb.OUT = REPO / "bench" / "out" / "prelabel-screenshots"
    ctx, ids, dataset_id = mlb.release_photos(paths)
    settings = MLBackendSettings(basic_auth_user="u", basic_auth_password="p" * 12,
                                 state_dir=mlb.OUT / "ml")  # fmt: skip
    auth = {"Authorization": "Basic " + base64.b64encode(b"u:" + b"p" * 12).decode()}
    out, images = [], []
    with TestClient(create_app(settings, ctx=ctx, sources=load_sources(settings))) as client:
        for i, path in enumerate(paths):
            task = {"id": i, "data": {"gateway_asset_id": ids[path.name],
                                      "gateway_dataset_id": dataset_id}}  # fmt: skip
            body = {"tasks": [task], "project": "1.1", "label_config": CONFIG}
            response = client.post("/predict", json=body, headers=auth)
            response.raise_for_status()
            out.append(response.json()["results"][0][0])
            with transaction(ctx.engine) as s:
                asset = s.get(Asset, ids[path.name])
                if asset is None or not asset.redacted_blob:
                    raise SystemExit(f"{path.name} was not released")
                pixels = decode_image(ctx.store.get(asset.redacted_blob), limits=Limits()).pixels
            ok, png = cv2.imencode(".png", pixels)
            if not ok:
                raise SystemExit("PNG encoding failed")
            images.append(png.tobytes())
    ctx.close()
    return out, images


def main() -> None:
    from gateway.labelstudio.server import LocalLabelStudio
    from tests.labelstudio.editor import Editor, browser

    names = list(PHOTOS)
    preds, images = predictions(list(PHOTOS.values()))
    with tempfile.TemporaryDirectory() as tmp:
        server = LocalLabelStudio(data_dir=Path(tmp))
        server.start()
        try:
            headers = {"Authorization": f"Token {server.token}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as api:
                spec = {"title": "Pre-labels", "label_config": CONFIG}
                project = api.post("/api/projects", json=spec).json()
                task_ids = []
                for name, png in zip(names, images, strict=True):
                    files = {"file": (f"{name}.png", png, "image/png")}
                    api.post(
                        f"/api/projects/{project['id']}/import", files=files
                    ).raise_for_status()
                tasks = api.get("/api/tasks", params={"project": project["id"]}).json()
                tasks = tasks["tasks"] if isinstance(tasks, dict) else tasks
                by_name = {next(n for n in names if n in str(t["data"])): t["id"] for t in tasks}
                for name, pred in zip(names, preds, strict=True):
                    body = {
                        "task": by_name[name],
                        "result": pred["result"],
                        "score": pred["score"],
                        "model_version": pred["model_version"],
                    }
                    api.post("/api/predictions", json=body).raise_for_status()
                    task_ids.append(by_name[name])
            driver = browser(Path(tmp) / "chromium")
            try:
                editor = Editor(driver, server.url, project["id"])
                editor.login(server.username, server.password)
                for name, task_id, pred in zip(names, task_ids, preds, strict=True):
                    editor.open(task_id)
                    until_regions(editor)
                    shot = Path(tmp) / f"{name}.png"
                    editor.screenshot(shot)
                    target = SHOTS / f"prelabels-{name}.jpg"
                    cv2.imwrite(str(target), cv2.imread(str(shot)), [cv2.IMWRITE_JPEG_QUALITY, 85])
                    counts: dict[str, int] = {}
                    for r in pred["result"]:
                        label = r["value"][r["type"]][0]
                        counts[f"{r['type']}:{label}"] = counts.get(f"{r['type']}:{label}", 0) + 1
                    print(f"{target.relative_to(REPO)}: {counts}")
            finally:
                driver.quit()
        finally:
            server.stop()
            shutil.rmtree(Path(tmp) / "chromium", ignore_errors=True)


def until_regions(editor: Any) -> None:
    from tests.labelstudio.editor import until

    until(lambda: "Regions" in editor.body() or "regions" in editor.body().lower(), "regions")
    import time

    time.sleep(2)  # let the editor finish drawing the regions before the picture (not a timing)


if __name__ == "__main__":
    main()
