"""The Celery application: built from settings at the entry point, never at import time."""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu.entity import Queue

from gateway.core.settings import Settings

REDACT_TASK = "gateway.redact"


def celery_app(settings: Settings, *, queues: list[str] | None = None) -> Celery:
    """Late acknowledgement and a prefetch of one: a message leaves the broker only when its
    job was run, and a worker holds at most the one it runs (a killed worker's message goes
    back to the queue). Tasks are keyed by job id and idempotent, so a redelivery is safe."""
    if settings.broker_url is None:
        raise ValueError("no broker configured (GATEWAY_BROKER_URL)")
    app = Celery("privacy_gateway", broker=settings.broker_url.get_secret_value())
    conf: dict[str, Any] = {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "result_backend": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 5,
        "task_default_queue": f"{settings.broker_queue_prefix}redact.default",
        "task_create_missing_queues": True,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": 3,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
    }
    if queues:
        conf["task_queues"] = [
            Queue(name, routing_key=name, durable=True)  # type: ignore[no-untyped-call]
            for name in queues
        ]
    app.conf.update(conf)
    return app


def region_queue(region: str, *, prefix: str = "") -> str:
    """The queue of redaction jobs a region's workers consume."""
    return f"{prefix}redact.{region}"
