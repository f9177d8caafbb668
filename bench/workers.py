"""The Celery worker processes of the scale benchmarks (`bench/scale.py`, and traced in
`bench/scale_trace.py`): separate `privacy-gateway worker` processes of region eu-de on the
local RabbitMQ."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BROKER = "amqp://guest:guest@127.0.0.1:5672//"


def scratch() -> Path:
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def worker_processes(
    url: str, data: Path, key: str, prefix: str, count: int, *, entry: str, name: str
) -> Iterator[list[Path]]:
    """`count` worker processes, each `entry(log_path, port)` (a "module:function" that starts
    the worker), each with its own probe port (on one port the second one could not start),
    each writing down its redaction calls (the files yielded); stderr to bench/out/<name>-i.log.
    """
    env = {
        **os.environ,
        "GATEWAY_BROKER_URL": BROKER,
        "GATEWAY_BROKER_QUEUE_PREFIX": prefix,
        "GATEWAY_DATABASE_URL": url,
        "GATEWAY_DATA_DIR": str(data),
        "GATEWAY_MASTER_KEY": key,
        "GATEWAY_REGION": "eu-de",
        "GATEWAY_LOG_LEVEL": "WARNING",
    }
    module, function = entry.split(":")
    logs = [data / f"calls-{i}.txt" for i in range(count)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"from {module} import {function}; {function}({str(log)!r}, {free_port()})",
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=(scratch() / f"{name}-{i}.log").open("w"),
        )
        for i, log in enumerate(logs)
    ]
    try:
        yield logs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
