"""A worker takes its next job as soon as one ends: with late acknowledgement and a prefetch
of one, the next message comes only after the ack, so an ack left waiting is a worker idle.

On the `solo` pool the ack was queued in Celery's event loop and, when the task had itself
been started from that queue, waited there for the loop's next timer (up to ~2 s; ~125 ms a
job on average in bench/scale.py). Real RabbitMQ, a real worker process with the gateway's
broker settings and worker arguments (tests/scaleout/ack_probe.py); its task only notes its
start and end, so the gaps between tasks are the engine's own."""

from __future__ import annotations

import itertools
import signal
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kombu import Connection
from pydantic import SecretStr

from gateway.core.settings import Settings
from gateway.scaleout.broker import REDACT_TASK, celery_app
from gateway.scaleout.worker import worker_argv
from tests.scaleout.helpers import ROOT, broker_or_skip, kill_group, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
JOBS = 24


def test_worker_runs_its_task_off_the_event_loop() -> None:
    argv = worker_argv(["q"], hostname="h", log_level="INFO")
    assert "--pool=solo" not in argv
    assert "--concurrency=1" in argv  # one job at a time: prefetch 1 stays one message


def test_a_backlog_is_worked_without_idle_gaps_between_jobs(tmp_path: Path) -> None:
    broker = broker_or_skip()
    queue = f"t{uuid.uuid4().hex[:8]}.redact.eu-de"
    out = tmp_path / "tasks.txt"
    app = celery_app(Settings(broker_url=SecretStr(broker), data_dir=tmp_path), queues=[queue])
    for job_id in range(JOBS):  # a backlog waiting before the worker starts
        app.send_task(REDACT_TASK, args=[job_id], queue=queue, routing_key=queue)
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.scaleout.ack_probe", broker, queue, str(out)],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: out.exists() and len(out.read_text().splitlines()) >= JOBS,
            timeout=90,
            what=f"{JOBS} tasks",
        )
    finally:
        kill_group(proc, signal.SIGKILL)
        log.close()
        with Connection(broker) as conn, conn.channel() as channel:
            channel.queue_delete(queue)
    rows = [tuple(float(x) for x in line.split()) for line in out.read_text().splitlines()]
    assert sorted(int(r[0]) for r in rows) == list(range(JOBS))  # each once, none lost
    gaps = [nxt[1] - prev[2] for prev, nxt in itertools.pairwise(rows[1:])]  # after the 1st
    assert max(gaps) < 0.5, f"an idle gap of {max(gaps):.3f} s between two jobs"
    assert statistics.median(gaps) < 0.05, gaps
