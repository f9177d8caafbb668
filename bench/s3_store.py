"""Blob store cost: the local directory against an S3 API (moto's server on loopback, the only
S3 reachable here), in one run: put/get latency of sealed 256 KiB blobs, and ingest
throughput (decode, seal, store, record) of the bundled photos through each.

    .venv/bin/python -m bench.s3_store [--blobs 200] [--images 40]

moto is a single-threaded Python server: its figures bound the gateway's own overhead per
request (boto3 signing, HTTP), not a real object store's latency. Writes
bench/results/s3-store-<date>.json and .md (machine, date, commit, figures).
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import platform
import statistics
import struct
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.settings import Settings
from gateway.core.storage import BlobStore, LocalBlobStore
from gateway.core.storage_s3 import S3BlobStore, s3_client
from gateway.datasets import DatasetSpec, create_dataset
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor

RESULTS = Path(__file__).parent / "results"
PHOTOS = Path(__file__).resolve().parents[1] / "gateway" / "demo_photos"
ACTOR = Actor("cli", "bench")
SPEC = {
    "name": "bench",
    "purpose": "Benchmark of the blob store.",
    "controller": "Bench",
    "legal_basis": "legitimate_interests",
    "data_subject_categories": ["passers-by"],
    "personal_data_categories": ["facial images"],
    "ontology": {"labels": [{"name": "person", "control": "box"}]},
}


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
    }


def blob_ops(store: BlobStore, count: int) -> dict[str, Any]:
    payload = os.urandom(256 * 1024)
    puts, gets = [], []
    for i in range(count):
        key = f"health/bench-{i}"
        start = time.perf_counter()
        store.put(key, payload)
        puts.append(time.perf_counter() - start)
        start = time.perf_counter()
        if store.get(key) != payload:
            raise RuntimeError("the store gave back other bytes")
        gets.append(time.perf_counter() - start)
        store.delete(key)
    return {"put": _ms(puts), "get": _ms(gets)}


def ingest_rate(settings: Settings, images: int) -> float:
    ctx = GatewayContext.open(settings)
    try:
        with transaction(ctx.engine) as s:
            dataset = create_dataset(s, ctx, DatasetSpec.model_validate(SPEC), actor=ACTOR)
        photos = sorted(PHOTOS.glob("masks_*.jpg"))
        start = time.perf_counter()
        for i in range(images):
            jpeg = photos[i % len(photos)].read_bytes()
            comment = b"bench %d" % i  # other bytes, so no upload is a duplicate
            data = jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + jpeg[2:]
            with transaction(ctx.engine) as s:
                out = ingest_upload(s, ctx, dataset, Upload(f"{i}.jpg", data), actor=ACTOR)
            if out.error is not None:
                raise RuntimeError(out.error)
        return images / (time.perf_counter() - start)
    finally:
        ctx.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--blobs", type=int, default=200)
    parser.add_argument("--images", type=int, default=40)
    args = parser.parse_args()
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    entry = {
        "bucket": "bench-eu-de",
        "endpoint_url": endpoint,
        "addressing_style": "path",
        "access_key_id": "bench",
        "secret_access_key": "bench",
    }
    key = base64.b64encode(os.urandom(32)).decode()
    with tempfile.TemporaryDirectory() as tmp:
        base = {"master_key": key, "workers": 1, "region": "eu-de"}
        local = Settings(data_dir=Path(tmp) / "local", **base)
        s3 = Settings(
            data_dir=Path(tmp) / "s3", storage_backend="s3", s3_buckets={"eu-de": entry}, **base
        )
        client = s3_client(s3.s3_buckets["eu-de"])
        client.create_bucket(Bucket="bench-eu-de")
        result = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip(),
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
            f"(shared with other engineers), Python {platform.python_version()}",
            "blob_256k": {
                "local": blob_ops(LocalBlobStore(Path(tmp) / "blobs"), args.blobs),
                "s3_moto_loopback": blob_ops(S3BlobStore(client, "bench-eu-de"), args.blobs),
            },
            "ingest_images_per_s": {
                "local": round(ingest_rate(local, args.images), 2),
                "s3_moto_loopback": round(ingest_rate(s3, args.images), 2),
            },
            "blobs": args.blobs,
            "images": args.images,
        }
    server.stop()
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"s3-store-{result['date'][:10]}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    b, i = result["blob_256k"], result["ingest_images_per_s"]
    lines = [
        f"# Blob store: local directory vs S3 API (moto on loopback), {result['date']}",
        "",
        f"commit {result['commit']}, {result['machine']}",
        "",
        "| store | put p50 / p99 ms (256 KiB) | get p50 / p99 ms | ingest images/s |",
        "|---|---|---|---|",
    ]
    for name in ("local", "s3_moto_loopback"):
        lines.append(
            f"| {name} | {b[name]['put']['p50_ms']} / {b[name]['put']['p99_ms']} | "
            f"{b[name]['get']['p50_ms']} / {b[name]['get']['p99_ms']} | {i[name]} |"
        )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
