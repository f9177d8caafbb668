"""A Celery worker with the gateway's broker settings and worker arguments, whose one task
only writes down when it started and ended: `python -m tests.scaleout.ack_probe BROKER QUEUE
OUT [POOL]` (POOL overrides the gateway's pool, to compare)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from pydantic import SecretStr

from gateway.core.settings import Settings
from gateway.scaleout.broker import REDACT_TASK, celery_app
from gateway.scaleout.worker import worker_argv


def main() -> None:
    broker, queue, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    settings = Settings(broker_url=SecretStr(broker), data_dir=out.parent)
    app = celery_app(settings, queues=[queue])

    def redact(job_id: int) -> str:
        started = time.monotonic()
        time.sleep(0.02)  # a short job: the gap between jobs is what is measured
        with out.open("a") as sink:
            sink.write(f"{job_id} {started} {time.monotonic()}\n")
        return "done"

    app.task(name=REDACT_TASK)(redact)
    argv = worker_argv([queue], hostname=f"probe@{queue}", log_level="WARNING")
    if len(sys.argv) > 4:
        argv = [a if not a.startswith("--pool=") else f"--pool={sys.argv[4]}" for a in argv]
    app.worker_main(argv)


if __name__ == "__main__":
    main()
