"""Where a Celery worker's time goes between two jobs (issue 17), measured, not guessed.

Runs the Celery backlog of `bench.scale` with its worker processes traced: monotonic
timestamps at every step of a job (message delivered, task start, residency and key checks,
claim, key unwrap, blob read, redaction start and end, result recorded, ack), each with the
thread's CPU time and run-queue wait (`/proc/<pid>/task/<tid>/schedstat`), so that time
waiting for a core on a loaded machine is told apart from time blocked (on the database, the
broker, a timer). Per job cycle (task start -> next task start) it reports the redaction call
and, outside it, CPU, run-queue wait and blocked time.

    PYTHONPATH=$PWD .venv/bin/python -m bench.scale_trace --pools solo,threads --images 20

`--pools` runs the worker with each Celery pool in turn (interleaved `--rounds` times), so a
before/after comparison shares one machine state. Writes bench/results/scale-trace-<date>.json.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TRACE_ENV = "BENCH_SCALE_TRACE_FILE"
POOL_ENV = "BENCH_SCALE_TRACE_POOL"
_lock = threading.Lock()
_current: dict[str, int | None] = {"job": None}


def _schedstat(tid: int | str) -> tuple[float, float]:
    try:
        run, wait, _ = Path(f"/proc/self/task/{tid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(run) / 1e9, int(wait) / 1e9


def mark(event: str, job: int | None = None) -> None:
    """One timestamp: the process's CPU and run-queue wait summed over its threads."""
    waits = sum(_schedstat(tid)[1] for tid in os.listdir("/proc/self/task"))
    record = {
        "t": time.monotonic(),
        "ev": event,
        "job": job if job is not None else _current["job"],
        "pid": os.getpid(),
        "cpu": time.process_time(),
        "runq": waits,
    }
    with _lock, open(os.environ[TRACE_ENV], "a", encoding="utf-8") as sink:
        sink.write(json.dumps(record) + "\n")


def _wrap(owner: Any, name: str, event: str) -> None:
    original = getattr(owner, name)

    @functools.wraps(original)
    def traced(*args: Any, **kwargs: Any) -> Any:
        mark(f"{event}:start")
        try:
            return original(*args, **kwargs)
        finally:
            mark(f"{event}:end")

    setattr(owner, name, traced)


def install() -> None:
    """Trace the worker's job path (in the worker process, before it starts)."""
    import kombu.message
    from celery import signals

    import gateway.core.keys
    import gateway.core.storage
    import gateway.pipeline
    import gateway.redactor
    import gateway.scaleout.tasks
    import gateway.scaleout.worker

    if os.environ.get(POOL_ENV):
        gateway.scaleout.worker.POOL = os.environ[POOL_ENV]  # type: ignore[misc]
    run = gateway.scaleout.worker.run_woken_job

    def run_woken_job(rt: Any, job_id: int) -> str:
        _current["job"] = job_id
        mark("task:start", job_id)
        try:
            return run(rt, job_id)
        finally:
            mark("task:end", job_id)

    gateway.scaleout.worker.run_woken_job = run_woken_job  # type: ignore[assignment]
    _wrap(gateway.scaleout.tasks, "refusal_for", "checks")
    _wrap(gateway.pipeline, "claim_job", "claim")
    _wrap(gateway.pipeline, "_record_outcome", "record")
    _wrap(gateway.core.keys.KeyProvider, "dataset_key", "key")
    for store in (gateway.core.storage.LocalBlobStore, gateway.core.storage.RegionalBlobStore):
        _wrap(store, "get", "blob")
    _wrap(gateway.redactor.IsolatedRedactor, "redact", "redact")
    signals.task_postrun.connect(lambda **_: mark("celery:postrun"), weak=False)
    ack = kombu.message.Message.ack

    def traced_ack(self: Any, *args: Any, **kwargs: Any) -> None:
        mark("ack")
        ack(self, *args, **kwargs)

    kombu.message.Message.ack = traced_ack  # type: ignore[method-assign]


def traced_worker(log_path: str, port: int) -> None:
    """`bench.scale.timed_worker`, traced: run by `traced_workers` as its own process."""
    from bench.scale import timed_worker

    install()
    timed_worker(log_path, port)


@contextmanager
def traced_workers(url: str, data: Path, key: str, prefix: str, count: int) -> Iterator[list[Path]]:
    """`bench.scale.celery_workers`, each worker traced (`traced_worker`)."""
    from bench.workers import worker_processes

    with worker_processes(
        url, data, key, prefix, count, entry="bench.scale_trace:traced_worker", name="traced-worker"
    ) as logs:
        yield logs


def cycles(path: Path, *, warm: int) -> list[dict[str, float]]:
    """Per job cycle of each worker (task start -> its next task start; the warm-up jobs
    and the upload pause after them left out): milliseconds of each kind."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    by_pid: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        by_pid.setdefault(r["pid"], []).append(r)
    out = []
    for events in by_pid.values():
        events.sort(key=lambda e: e["t"])
        starts = [e for e in events if e["ev"] == "task:start"]
        for a, b in itertools.pairwise(starts):
            inside = [e for e in events if a["t"] <= e["t"] < b["t"]]
            begin = [e for e in inside if e["ev"] == "redact:start"]
            end = [e for e in inside if e["ev"] == "redact:end"]
            if a["job"] <= warm or len(begin) != 1 or len(end) != 1:
                continue
            cycle, redact = b["t"] - a["t"], end[0]["t"] - begin[0]["t"]
            cpu = (b["cpu"] - a["cpu"]) - (end[0]["cpu"] - begin[0]["cpu"])
            runq = (b["runq"] - a["runq"]) - (end[0]["runq"] - begin[0]["runq"])
            acked = [e for e in inside if e["ev"] == "ack"]
            posted = [e for e in inside if e["ev"] == "celery:postrun"]
            ack_wait = acked[0]["t"] - posted[0]["t"] if acked and posted else 0.0
            out.append(
                {
                    "cycle_ms": 1000 * cycle,
                    "redaction_ms": 1000 * redact,
                    "outside_ms": 1000 * (cycle - redact),
                    "outside_cpu_ms": 1000 * cpu,
                    "outside_runqueue_ms": 1000 * runq,
                    "outside_blocked_ms": 1000 * (cycle - redact - cpu - runq),
                    "task_end_to_ack_ms": 1000 * ack_wait,
                }
            )
    return out


def summary(rows: list[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {"cycles": len(rows)}
    for name in rows[0] if rows else []:
        values = sorted(r[name] for r in rows)
        out[f"{name}_mean"] = round(statistics.fmean(values), 1)
        out[f"{name}_p90"] = round(values[min(len(values) - 1, int(0.9 * len(values)))], 1)
        out[f"{name}_max"] = round(values[-1], 1)
    return out


def run(pool: str, images: list[bytes], workers: int, trace: Path) -> dict[str, Any]:
    from bench import scale

    trace.write_text("")
    os.environ[TRACE_ENV], os.environ[POOL_ENV] = str(trace), pool
    original: Callable[..., Any] = scale.celery_workers
    scale.celery_workers = traced_workers  # type: ignore[assignment]
    try:
        backlog = scale.celery_backlog(scale.ADMIN_URL, images, workers)
    finally:
        scale.celery_workers = original  # type: ignore[assignment]
    return {"pool": pool, "backlog": backlog, **summary(cycles(trace, warm=2 * workers))}


def main() -> None:
    from bench import scale

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--pools", default="solo,threads")
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    images = scale.photos(args.images + 5)
    load = [round(x, 2) for x in os.getloadavg()]
    results = []
    for round_ in range(args.rounds):
        for pool in args.pools.split(","):
            trace = scale.scratch() / f"trace-{pool}-{round_}.jsonl"
            results.append(run(pool, images, args.workers, trace))
            print(json.dumps(results[-1]), flush=True)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": scale.commit(),
        "machine": {**scale.machine(), "load_average_at_start": load},
        "workers": args.workers,
        "runs": results,
    }
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    stem = f"scale-trace-{report['date'][:10]}" + (f"-{args.label}" if args.label else "")
    (scale.RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote bench/results/{stem}.json")


if __name__ == "__main__":
    main()
