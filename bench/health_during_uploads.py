"""`/health` latency while a burst of large uploads is validated (issue 21).

A real gateway (uvicorn, SQLite, the real ingest path; redaction quarantines, so only the
upload route's own work is measured) receives CLIENTS parallel uploads of FILES flat
49-Mpx PNGs each (~140 KB on the wire, under the 50 Mpx limit), ROUNDS times; a prober asks
`/health` every 20 ms over a fresh connection and records each answer's latency.

    PYTHONPATH=$PWD .venv/bin/python bench/health_during_uploads.py [--label after]

Run it with PYTHONPATH pointing at an older checkout to measure "before". Writes
bench/results/health-during-uploads-<date>-<label>.json and prints a Markdown row.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from PIL import Image

from gateway.apikeys import create_api_key
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import Role
from gateway.core.settings import Settings
from gateway.datasets import DatasetSpec, create_dataset
from gateway.labelstudio.server import free_port
from gateway.lineage import Actor
from gateway.main import create_app
from gateway.pipeline import NotBuiltRedactor

RESULTS = Path(__file__).parent / "results"
SIDE = 7000
PROBE_EVERY = 0.02
DATASET = {
    "name": "bench-uploads",
    "purpose": "Measure API responsiveness during uploads.",
    "controller": "Example Lab",
    "legal_basis": "legitimate_interests",
    "data_subject_categories": ["passers-by"],
    "personal_data_categories": ["facial images"],
    "ontology": {"labels": [{"name": "person", "control": "box"}]},
}


def flat_png(side: int, value: int) -> bytes:
    """One colour per file: distinct bytes (no dedup short-cut), ~140 KB, 49 Mpx to decode."""
    buf = io.BytesIO()
    Image.fromarray(np.full((side, side, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def setup(data_dir: Path) -> tuple[GatewayContext, str, str]:
    settings = Settings(
        data_dir=data_dir,
        master_key=base64.b64encode(os.urandom(32)).decode(),
        workers=1,
        retention_interval_seconds=0,
        annotation_pull_interval_seconds=0,
    )
    ctx = GatewayContext.open(settings)
    actor = Actor("cli", "bench")
    with transaction(ctx.engine) as s:
        dataset = create_dataset(s, ctx, DatasetSpec.model_validate(DATASET), actor=actor)
        _, token = create_api_key(
            s,
            role=Role.ADMIN,
            label="bench",
            dataset_scope=None,
            expires_at=None,
            pepper=ctx.keys.api_key_pepper(),
            actor=actor,
            now=ctx.clock(),
            region=settings.region,
        )
    return ctx, dataset.id, token


def probe(url: str, stop: threading.Event, latencies: list[float]) -> None:
    """One client made once (building one per call costs the prober itself ~20 ms of CPU)."""
    with httpx.Client(timeout=120) as client:
        while not stop.is_set():
            start = time.perf_counter()
            response = client.get(f"{url}/health")
            latencies.append(time.perf_counter() - start)
            assert response.status_code == 200  # noqa: S101
            stop.wait(PROBE_EVERY)


def upload(url: str, dataset_id: str, token: str, files: list[tuple[str, bytes]]) -> int:
    multipart = [("files", (name, data, "image/png")) for name, data in files]
    response = httpx.post(
        f"{url}/v1/datasets/{dataset_id}/assets",
        files=multipart,
        headers={"Authorization": f"Bearer {token}"},
        timeout=600,
    )
    return response.status_code


def run(clients: int, files: int, rounds: int) -> dict[str, object]:
    pngs = [flat_png(SIDE, i) for i in range(clients * files * rounds)]
    with tempfile.TemporaryDirectory() as tmp:
        ctx, dataset_id, token = setup(Path(tmp))
        app = create_app(ctx.settings, ctx=ctx, redactor_factory=NotBuiltRedactor)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)  # waiting for startup, not timing anything
        url = f"http://127.0.0.1:{port}"
        idle: list[float] = []
        idle_stop = threading.Event()
        idle_prober = threading.Thread(target=probe, args=(url, idle_stop, idle))
        idle_prober.start()
        while len(idle) < 50:
            idle_stop.wait(PROBE_EVERY)
        idle_stop.set()
        idle_prober.join()
        latencies: list[float] = []
        stop = threading.Event()
        prober = threading.Thread(target=probe, args=(url, stop, latencies))
        prober.start()
        started = time.perf_counter()
        statuses: list[int] = []
        for r in range(rounds):
            batch = [
                [(f"r{r}-c{c}-f{f}.png", pngs[(r * clients + c) * files + f]) for f in range(files)]
                for c in range(clients)
            ]
            uploaders = [
                threading.Thread(
                    target=lambda b=b: statuses.append(upload(url, dataset_id, token, b))
                )
                for b in batch
            ]
            for t in uploaders:
                t.start()
            for t in uploaders:
                t.join()
        elapsed = time.perf_counter() - started
        stop.set()
        prober.join()
        server.should_exit = True
        thread.join(30)
        ctx.close()
    return {
        "clients": clients,
        "files_per_upload": files,
        "rounds": rounds,
        "png_bytes": len(pngs[0]),
        "pixels": SIDE * SIDE,
        "upload_statuses": sorted(set(statuses)),
        "burst_seconds": round(elapsed, 2),
        "probes": len(latencies),
        "idle_p50_ms": _ms(statistics.median(idle)),
        "p50_ms": _ms(statistics.median(latencies)),
        "p99_ms": _ms(_percentile(latencies, 99)),
        "max_ms": _ms(max(latencies)),
    }


def _percentile(values: list[float], pct: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def machine() -> dict[str, object]:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parent,
    ).stdout.strip()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "gateway_code": str(Path(sys.modules["gateway"].__file__ or "").parent),
    }


def _cpu_threads() -> int | None:
    offload = sys.modules.get("gateway.offload")
    return getattr(offload, "CPU_THREADS", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--files", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--label", default="after")
    parser.add_argument("--cpu-threads", type=int, default=None, help="upload worker threads")
    args = parser.parse_args()
    if args.cpu_threads is not None:
        import gateway.offload

        gateway.offload.CPU_THREADS = args.cpu_threads
    result = {**machine(), **run(args.clients, args.files, args.rounds), "label": args.label}
    result["cpu_threads"] = _cpu_threads()
    RESULTS.mkdir(exist_ok=True)
    day = datetime.now(UTC).date().isoformat()
    out = RESULTS / f"health-during-uploads-{day}-{args.label}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
