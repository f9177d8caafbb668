"""Real RabbitMQ (127.0.0.1:5672, guest), real worker processes, waits on conditions."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from kombu import Connection
from pydantic import SecretStr

from gateway.core.settings import Settings

BROKER_URL = os.environ.get("GATEWAY_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def broker_or_skip() -> str:
    try:
        with Connection(BROKER_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        pytest.skip(f"no RabbitMQ at {BROKER_URL}: {type(exc).__name__}")
    return BROKER_URL


def with_broker(settings: Settings, **more: object) -> Settings:
    """These settings with the broker and a queue prefix of their own (tests share RabbitMQ)."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    update = {"broker_url": SecretStr(broker_or_skip()), "broker_queue_prefix": prefix, **more}
    return settings.model_copy(update=update)


def queue_depth(name: str) -> int:
    """Messages ready in queue `name` (0 if it does not exist yet)."""
    with Connection(BROKER_URL) as conn, conn.channel() as channel:
        try:
            return int(channel.queue_declare(name, passive=True).message_count)
        except Exception:  # not declared yet
            return 0


def purge(name: str) -> None:
    with Connection(BROKER_URL) as conn, conn.channel() as channel:
        channel.queue_purge(name)


def delete_queues(prefix: str) -> None:
    for region in ("eu-de", "ch-zh", "us-east", "default"):
        with Connection(BROKER_URL) as conn, conn.channel() as channel:
            channel.queue_delete(f"{prefix}redact.{region}")  # absent: a no-op


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def gateway_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "GATEWAY_DATA_DIR": str(settings.data_dir),
        "GATEWAY_DATABASE_URL": settings.resolved_database_url,
        "GATEWAY_REGION": settings.region,
        "GATEWAY_JOB_LEASE_SECONDS": str(settings.job_lease_seconds),
        "GATEWAY_JOB_HEARTBEAT_SECONDS": str(settings.job_heartbeat_seconds),
        "GATEWAY_RELAY_INTERVAL_SECONDS": str(settings.relay_interval_seconds),
        "GATEWAY_RELAY_REPUBLISH_SECONDS": str(settings.relay_republish_seconds),
        "GATEWAY_BROKER_QUEUE_PREFIX": settings.broker_queue_prefix,
        "GATEWAY_WORKERS": "1",
        "GATEWAY_LOG_LEVEL": "INFO",
    }
    if settings.broker_url is not None:
        env["GATEWAY_BROKER_URL"] = settings.broker_url.get_secret_value()
    if settings.master_key is not None:
        env["GATEWAY_MASTER_KEY"] = settings.master_key.get_secret_value()
    if settings.storage_dir is not None:
        env["GATEWAY_STORAGE_DIR"] = str(settings.storage_dir)
    if settings.kms_url is not None and settings.kms_credential is not None:
        env["GATEWAY_KMS_URL"] = settings.kms_url
        env["GATEWAY_KMS_CREDENTIAL"] = settings.kms_credential.get_secret_value()
    return env | extra


@contextmanager
def process(
    argv: list[str], *, env: dict[str, str], log: Path, prefix: list[str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A gateway command as its own process group (killed with its children at the end)."""
    command = [*(prefix or []), sys.executable, "-m", "gateway", *argv]
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        kill_group(proc, signal.SIGKILL)


def kill_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    proc.wait(timeout=30)
