"""Scale-out figures (issue 17), on PostgreSQL.

* engine: images/s with 1 and 2 worker processes draining a backlog of 400 px photos under the
  default policy; per image, the time outside the redaction call (database, storage,
  encryption, metadata gate, and the broker when there is one) against the redaction call
  itself; queue latency (upload committed -> the redaction call starts) p50/p99 while photos
  arrive one by one at ~60% of one worker's capacity.
* ledger: lineage appends/s with 4 processes (standing for 2 workers + 2 API processes) writing
  at once, each in its own transactions, through the real ledger (sequencer, outbox, drain).

    PYTHONPATH=$PWD .venv/bin/python -m bench.scale [--images 40] [--engines embedded]

Each part runs in a database it creates afresh (bench_scale_*; dropped at the end) on the
server of --admin-url (default: the local PostgreSQL, db `test`). Writes
bench/results/scale-<date>[-label].json and .md (machine, load, date, commit, figures).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import multiprocessing
import os
import platform
import random
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps
from sqlalchemy import create_engine, text
from sqlmodel import func, select

from bench.workers import BROKER, ROOT, scratch, worker_processes
from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.models import Dataset, Job, LineageRecord
from gateway.core.settings import Settings
from gateway.datasets import create_dataset
from gateway.demo import DEMO_DATASET
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from gateway.pipeline import RedactionOutcome
from gateway.processing import pending_jobs

RESULTS = ROOT / "bench" / "results"
PHOTOS = ROOT / "gateway" / "demo_photos"
ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SIDE = 400
ACTOR = Actor("system", "bench-scale")


# -- inputs -------------------------------------------------------------------------------------


def photos(count: int) -> list[bytes]:
    """`count` distinct JPEGs, 400 px on the long side, made from the demo photos (mirrored and
    re-encoded at varying quality, so every one has its own content digest)."""
    sources = sorted(PHOTOS.glob("*.jpg"))
    out: list[bytes] = []
    for i in range(count):
        image = Image.open(sources[i % len(sources)]).convert("RGB")
        image.thumbnail((SIDE, SIDE))
        if (i // len(sources)) % 2:
            image = ImageOps.mirror(image)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=80 + (i // (2 * len(sources))) % 15)
        out.append(buffer.getvalue())
    if len({hashlib.sha256(b).digest() for b in out}) != count:
        raise SystemExit("the bench photos are not distinct")
    return out


# -- databases ----------------------------------------------------------------------------------


@contextmanager
def fresh_database(admin_url: str, name: str) -> Iterator[str]:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def open_context(url: str, data: Path, *, workers: int) -> GatewayContext:
    key = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(
        data_dir=data,
        database_url=url,
        master_key=key,
        region="eu-de",
        workers=workers,
        worker_poll_seconds=5.0,
        retention_interval_seconds=0,
        annotation_pull_interval_seconds=0,
    )
    return GatewayContext.open(settings)


def dataset_id(ctx: GatewayContext) -> str:
    with transaction(ctx.engine) as session:
        found = session.exec(select(Dataset).where(Dataset.name == DEMO_DATASET.name)).first()
        if found is None:
            found = create_dataset(session, ctx, DEMO_DATASET, actor=ACTOR)
        return found.id


def upload(ctx: GatewayContext, dataset: str, data: bytes, name: str) -> tuple[str, float]:
    """Ingest one photo in its own transaction; its asset id and the moment it committed."""
    with transaction(ctx.engine) as session:
        found = session.get(Dataset, dataset)
        if found is None:
            raise LookupError(dataset)
        outcome = ingest_upload(session, ctx, found, Upload(name, data), actor=ACTOR)
    return outcome.asset_id, time.time()


# -- the redaction call, timed ------------------------------------------------------------------


class TimedRedactor:
    """The real redactor, with the start and length of every redaction call written down
    (keyed by the digest of the original it was handed)."""

    def __init__(self, inner: Any, log: dict[str, tuple[float, float]]) -> None:
        self.inner, self.log = inner, log

    def redact(self, data: bytes) -> RedactionOutcome:
        started, t0 = time.time(), time.perf_counter()
        outcome: RedactionOutcome = self.inner.redact(data)
        self.log[hashlib.sha256(data).hexdigest()] = (started, time.perf_counter() - t0)
        return outcome

    def for_policy(self, policy: Any) -> TimedRedactor:
        chosen = self.inner.for_policy(policy)
        return self if chosen is self.inner else TimedRedactor(chosen, self.log)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # alive, revive: the supervisor's probes
        return getattr(self.inner, name)


class FileLog(dict[str, tuple[float, float]]):
    """A redaction-call log that a worker process also appends to a file (digest, start,
    seconds a line), for the bench process to read back."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def __setitem__(self, digest: str, value: tuple[float, float]) -> None:
        super().__setitem__(digest, value)
        with self.path.open("a", encoding="utf-8") as sink:
            sink.write(f"{digest} {value[0]} {value[1]}\n")


def read_call_logs(paths: list[Path]) -> dict[str, tuple[float, float]]:
    calls: dict[str, tuple[float, float]] = {}
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines() if path.exists() else []:
            digest, started, length = line.split()
            calls[digest] = (float(started), float(length))
    return calls


def timed_worker(log_path: str, port: int) -> None:
    """`privacy-gateway worker --region eu-de` (settings from the environment), its redaction
    calls written down in `log_path`: run by `celery_workers` as its own process."""
    from gateway.logs import configure_logging
    from gateway.redactor import IsolatedRedactor
    from gateway.scaleout.worker import run_worker

    settings = Settings()
    configure_logging(settings.log_level)
    log = FileLog(Path(log_path))
    run_worker(
        settings,
        queues=None,
        region="eu-de",
        probes=("127.0.0.1", port),
        redactor_factory=lambda: TimedRedactor(IsolatedRedactor(settings), log),
    )


def warm_redactors(ctx: GatewayContext, count: int, sample: bytes) -> list[IsolatedRedactorT]:
    from gateway.redactor import IsolatedRedactor

    made = [IsolatedRedactor(ctx.settings) for _ in range(count)]
    for redactor in made:  # models loaded, first-call costs paid before the clock starts
        redactor.redact(sample)
    return made


IsolatedRedactorT = Any


def _proc_stat(pid: str) -> tuple[int, int] | None:
    """(parent pid, user+system CPU ticks) of a process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[11]) + int(fields[12])


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by this process and its live descendants ("ours", the
    redaction processes and Celery workers included), and by the whole machine ("machine")."""
    stats = {pid: _proc_stat(pid) for pid in os.listdir("/proc") if pid.isdigit()}
    children: dict[int, list[int]] = {}
    for pid, stat in stats.items():
        if stat is not None:
            children.setdefault(stat[0], []).append(int(pid))
    ours, todo = 0, [os.getpid()]
    while todo:
        pid = todo.pop()
        stat = stats.get(str(pid))
        ours += stat[1] if stat else 0
        todo += children.get(pid, [])
    line = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(x) for x in line) - int(line[3]) - int(line[4])  # minus idle, iowait
    tick = os.sysconf("SC_CLK_TCK")
    return {"ours": ours / tick, "machine": busy / tick}


def cpu_share(before: dict[str, float], after: dict[str, float], wall: float) -> dict[str, float]:
    """Cores this bench had and cores the whole machine used while it ran: when the machine
    is full and ours is well under 2, the ceiling is other people's work, not the engine."""
    return {
        "cores_used_by_bench": round((after["ours"] - before["ours"]) / wall, 2),
        "cores_busy_machine": round((after["machine"] - before["machine"]) / wall, 2),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


# -- the embedded engine ------------------------------------------------------------------------


def embedded_backlog(admin_url: str, images: list[bytes], workers: int) -> dict[str, Any]:
    """Enqueue every photo, then let `workers` job workers (one redaction process each) drain."""
    from gateway.background import Supervisor
    from gateway.workers import job_workers

    with (
        fresh_database(admin_url, f"bench_scale_e{workers}") as url,
        tempfile.TemporaryDirectory(dir=scratch()) as tmp,
    ):
        ctx = open_context(url, Path(tmp), workers=workers)
        log: dict[str, tuple[float, float]] = {}
        pool = [TimedRedactor(r, log) for r in warm_redactors(ctx, workers, images[-1])]
        log.clear()
        db = DatabaseMeter(ctx)
        dataset = dataset_id(ctx)
        t_ingest = time.perf_counter()
        for i, data in enumerate(images[:-1]):
            upload(ctx, dataset, data, f"p{i}.jpg")
        ingest_s = time.perf_counter() - t_ingest
        count = len(images) - 1
        supervisor = Supervisor()
        free = iter(pool)
        for worker in job_workers(ctx, redactor_factory=lambda: next(free), count=workers):
            supervisor.add(worker)
        db.reset()
        cpu0 = cpu_seconds()
        t0 = time.perf_counter()
        supervisor.start()
        supervisor.wake()
        wait_until(lambda: pending_jobs(ctx) == 0, timeout=1800)
        wall = time.perf_counter() - t0
        cpu = cpu_share(cpu0, cpu_seconds(), wall)
        supervisor.stop()
        statements, commits, statement_s = db.statements, db.commits, db.seconds
        durable = db.durable_commits
        commit_ms = commit_latency_ms(ctx)
        rtt_ms = round_trip_ms(ctx)
        records = ledger_records(ctx)
        ctx.close()
    calls = [length for _, length in log.values()]
    return {
        "engine": "embedded",
        "workers": workers,
        "images": count,
        "wall_s": round(wall, 3),
        "images_per_s": round(count / wall, 3),
        "ms_per_image_per_worker": round(1000 * wall * workers / count, 1),
        **cpu,
        "cpu_ms_per_image": round(1000 * cpu["cores_used_by_bench"] * wall / count, 1),
        "ingest_ms_per_image": round(1000 * ingest_s / count, 1),
        "redact_call_ms_mean": round(1000 * statistics.fmean(calls), 1),
        "outside_redact_ms_per_image": round(
            1000 * (wall * workers / count - statistics.fmean(calls)), 1
        ),
        "db_statements_per_image": round(statements / count, 1),
        "db_commits_per_image": round(commits / count, 1),
        "db_durable_commits_per_image": round(durable / count, 1),
        "db_statement_ms_per_image": round(1000 * statement_s / count, 1),
        "db_commit_ms_p50_alone": commit_ms,
        "db_round_trip_ms_p50_alone": rtt_ms,
        # statements x a lone round trip + commits that wrote x a lone durable commit: the
        # database's own cost per image without the CPU contention of this shared machine
        "db_ms_per_image_estimate": round(
            statements / count * rtt_ms + durable / count * commit_ms, 1
        ),
        "ledger_records_per_image_incl_ingest": round(records / (count + workers), 1),
    }


def ledger_records(ctx: GatewayContext) -> int:
    from gateway.lineage.ledger import drain

    drain(ctx.engine)
    with transaction(ctx.engine) as session:
        return int(session.exec(select(func.count()).select_from(LineageRecord)).one())


class DatabaseMeter:
    """Counts the statements and commits this process sends, and the time spent in them."""

    def __init__(self, ctx: GatewayContext) -> None:
        from sqlalchemy import event

        self.statements = self.commits = self.durable_commits = 0
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._started: dict[int, float] = {}
        self._wrote: set[int] = set()
        event.listen(ctx.engine, "before_cursor_execute", self._before)
        event.listen(ctx.engine, "after_cursor_execute", self._after)
        event.listen(ctx.engine, "commit", self._commit)

    def reset(self) -> None:
        with self._lock:
            self.statements = self.commits = self.durable_commits = 0
            self.seconds = 0.0

    def _before(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self._started[id(conn)] = time.perf_counter()
        if statement.lstrip()[:6].upper() in {"INSERT", "UPDATE", "DELETE"}:
            self._wrote.add(id(conn))

    def _after(self, conn: Any, *_: Any) -> None:
        elapsed = time.perf_counter() - self._started.pop(id(conn), time.perf_counter())
        with self._lock:
            self.statements += 1
            self.seconds += elapsed

    def _commit(self, conn: Any) -> None:
        with self._lock:
            self.commits += 1
            if id(conn) in self._wrote:  # a commit that must reach the disk (WAL flush)
                self.durable_commits += 1
                self._wrote.discard(id(conn))


def round_trip_ms(ctx: GatewayContext, rounds: int = 200) -> float:
    """One trivial statement, alone, on this server: the unit cost of a statement."""
    times = []
    with ctx.engine.connect() as conn:
        for _ in range(rounds):
            t0 = time.perf_counter()
            conn.execute(text("SELECT 1")).scalar()
            times.append(1000 * (time.perf_counter() - t0))
    return round(percentile(times, 50), 3)


def commit_latency_ms(ctx: GatewayContext, rounds: int = 200) -> float:
    """One small durable write and its COMMIT, alone, on this server: the unit of the
    database's cost per job."""
    times = []
    with ctx.engine.connect() as conn:
        conn.execute(text("CREATE TABLE bench_commit (n int)"))  # logged, as real rows
        conn.commit()
        for i in range(rounds):
            t0 = time.perf_counter()
            conn.execute(text("INSERT INTO bench_commit VALUES (:n)"), {"n": i})
            conn.commit()
            times.append(1000 * (time.perf_counter() - t0))
    return round(percentile(times, 50), 2)


def embedded_trickle(admin_url: str, images: list[bytes], service_s: float) -> dict[str, Any]:
    """One idle worker; photos arrive one at a time (Poisson, 60% of its capacity), each upload
    waking the workers as the API does. Latency: upload committed -> redaction call starts."""
    from gateway.background import Supervisor
    from gateway.workers import job_workers

    rng = random.Random(17)  # noqa: S311 (arrival times, not secrets)
    with (
        fresh_database(admin_url, "bench_scale_t") as url,
        tempfile.TemporaryDirectory(dir=scratch()) as tmp,
    ):
        ctx = open_context(url, Path(tmp), workers=1)
        log: dict[str, tuple[float, float]] = {}
        (redactor,) = warm_redactors(ctx, 1, images[-1])
        log.clear()
        supervisor = Supervisor()
        for worker in job_workers(
            ctx, redactor_factory=lambda: TimedRedactor(redactor, log), count=1
        ):
            supervisor.add(worker)
        supervisor.start()
        committed: dict[str, tuple[str, float]] = {}
        dataset = dataset_id(ctx)
        for i, data in enumerate(images[:-1]):
            committed[hashlib.sha256(data).hexdigest()] = upload(ctx, dataset, data, f"t{i}.jpg")
            supervisor.wake()
            time.sleep(rng.expovariate(0.6 / service_s))  # open-loop arrivals, not a timing
        wait_until(lambda: pending_jobs(ctx) == 0, timeout=600)
        supervisor.stop()
        finished = finish_times(ctx)
        ctx.close()
    waits = [1000 * (log[d][0] - t) for d, (_, t) in committed.items() if d in log]
    return {
        "engine": "embedded",
        "arrivals": "poisson, 60% of one worker",
        "jobs": len(waits),
        "queue_latency_ms_p50": round(percentile(waits, 50), 1),
        "queue_latency_ms_p99": round(percentile(waits, 99), 1),
        **sojourn(committed.values(), finished),
    }


def finish_times(ctx: GatewayContext) -> dict[str, float]:
    with transaction(ctx.engine) as session:
        rows = session.exec(select(Job.asset_id, Job.finished_at)).all()
    return {a: f.timestamp() for a, f in rows if f is not None}


def sojourn(committed: Any, finished: dict[str, float]) -> dict[str, float]:
    """Upload committed -> job finished, per job (queue wait + redaction + recording)."""
    times = [1000 * (finished[a] - t) for a, t in committed if a in finished]
    return {
        "sojourn_ms_p50": round(percentile(times, 50), 1),
        "sojourn_ms_p99": round(percentile(times, 99), 1),
    }


# -- the Celery engine (RabbitMQ) ---------------------------------------------------------------


@contextmanager
def celery_workers(url: str, data: Path, key: str, prefix: str, count: int) -> Iterator[list[Path]]:
    """`count` separate `privacy-gateway worker` processes of region eu-de on RabbitMQ, each
    writing down its redaction calls (the files yielded): `bench.workers.worker_processes`."""
    with worker_processes(
        url, data, key, prefix, count, entry="bench.scale:timed_worker", name="celery-worker"
    ) as logs:
        yield logs


def broker_context(url: str, data: Path, key: str, prefix: str) -> GatewayContext:
    settings = Settings(
        data_dir=data,
        database_url=url,
        master_key=key,
        region="eu-de",
        broker_url=BROKER,
        broker_queue_prefix=prefix,
        retention_interval_seconds=0,
        annotation_pull_interval_seconds=0,
    )
    return GatewayContext.open(settings)


CeleryRun = tuple[
    float,
    int,
    dict[str, tuple[str, float]],
    dict[str, float],
    dict[str, float],
    dict[str, tuple[float, float]],
]


def celery_run(
    admin_url: str, images: list[bytes], workers: int, *, arrival_s: float | None
) -> CeleryRun:
    """Upload (as the API does: commit, then its dispatcher publishes the wake-up) to
    `workers` Celery worker processes; a backlog first when `arrival_s` is None, else one
    photo at a time. The wall time of the measured part, its count, commits, finishes."""
    from gateway.scaleout.broker import celery_app
    from gateway.scaleout.relay import CeleryPublisher, dispatch

    rng = random.Random(17)  # noqa: S311 (arrival times, not secrets)
    key = base64.b64encode(os.urandom(32)).decode()
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    name = f"bench_scale_c{workers}{'t' if arrival_s else ''}"
    with fresh_database(admin_url, name) as url, tempfile.TemporaryDirectory(dir=scratch()) as tmp:
        ctx = broker_context(url, Path(tmp), key, prefix)
        publisher = CeleryPublisher(celery_app(ctx.settings))
        dataset = dataset_id(ctx)
        warm = images[-5 : -5 + 2 * workers]  # two per worker: each gets one, prefetch 1
        measured = images[:-5]
        with celery_workers(url, Path(tmp), key, prefix, workers) as call_logs:
            for i, data in enumerate(warm):  # models loaded in every worker first
                upload(ctx, dataset, data, f"w{i}.jpg")
                dispatch(ctx, publisher)
            wait_until(lambda: pending_jobs(ctx) == 0, timeout=600)
            wait_until(lambda: len(read_call_logs(call_logs)) >= len(warm), timeout=60)
            warmed = set(read_call_logs(call_logs))
            committed: dict[str, tuple[str, float]] = {}
            t0 = time.perf_counter()
            for i, data in enumerate(measured):
                committed[hashlib.sha256(data).hexdigest()] = upload(
                    ctx, dataset, data, f"c{i}.jpg"
                )
                if arrival_s is not None:
                    dispatch(ctx, publisher)
                    time.sleep(rng.expovariate(1 / arrival_s))  # open-loop arrivals
            if arrival_s is None:
                cpu0 = cpu_seconds()
                t0 = time.perf_counter()
                while dispatch(ctx, publisher):
                    pass
            wait_until(lambda: pending_jobs(ctx) == 0, timeout=1800)
            wall = time.perf_counter() - t0
            cpu = cpu_share(cpu0, cpu_seconds(), wall) if arrival_s is None else {}
            finished = finish_times(ctx)
            expected = {hashlib.sha256(d).hexdigest() for d in measured} - warmed
            wait_until(lambda: expected <= set(read_call_logs(call_logs)), timeout=60)
            calls = {d: c for d, c in read_call_logs(call_logs).items() if d in expected}
        ctx.close()
    return wall, len(measured), committed, finished, cpu, calls


def celery_backlog(admin_url: str, images: list[bytes], workers: int) -> dict[str, Any]:
    wall, count, _, _, cpu, calls = celery_run(admin_url, images, workers, arrival_s=None)
    lengths = [length for _, length in calls.values()]
    return {
        "engine": "celery",
        "workers": workers,
        "images": count,
        "wall_s": round(wall, 3),
        "images_per_s": round(count / wall, 3),
        "ms_per_image_per_worker": round(1000 * wall * workers / count, 1),
        **cpu,
        "cpu_ms_per_image": round(1000 * cpu["cores_used_by_bench"] * wall / count, 1),
        "redact_call_ms_mean": round(1000 * statistics.fmean(lengths), 1),
        "outside_redact_ms_per_image": round(
            1000 * (wall * workers / count - statistics.fmean(lengths)), 1
        ),
    }


def celery_trickle(admin_url: str, images: list[bytes], service_s: float) -> dict[str, Any]:
    _, count, committed, finished, _, calls = celery_run(
        admin_url, images, 1, arrival_s=service_s / 0.6
    )
    waits = [1000 * (calls[d][0] - t) for d, (_, t) in committed.items() if d in calls]
    return {
        "engine": "celery",
        "arrivals": "poisson, 60% of one worker",
        "jobs": count,
        "queue_latency_ms_p50": round(percentile(waits, 50), 1),
        "queue_latency_ms_p99": round(percentile(waits, 99), 1),
        **sojourn(committed.values(), finished),
    }


def broker_hop(messages: int = 300) -> dict[str, Any]:
    """RabbitMQ alone: publish one persistent message, take it from the queue, acknowledge."""
    from kombu import Connection, Queue

    name = f"bench-hop-{uuid.uuid4().hex[:8]}"
    hops = []
    with Connection(BROKER) as conn:
        queue = Queue(name, routing_key=name, durable=True, auto_delete=False)
        producer = conn.Producer()
        with conn.SimpleQueue(queue) as simple:
            for i in range(messages):
                t0 = time.perf_counter()
                producer.publish({"job": i}, routing_key=name, delivery_mode=2, declare=[queue])
                simple.get(timeout=10).ack()
                hops.append(1000 * (time.perf_counter() - t0))
        queue(conn.channel()).delete()
    return {
        "messages": messages,
        "hop_ms_p50": round(percentile(hops, 50), 2),
        "hop_ms_p99": round(percentile(hops, 99), 2),
    }


def wait_until(condition: Callable[[], bool], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the jobs did not finish in time")
        time.sleep(0.05)


# -- the ledger under several processes ---------------------------------------------------------


def _ledger_writer(url: str, role: str, seconds: float, per_tx: int, out: Any) -> None:
    from gateway.core.db import make_engine
    from gateway.lineage import append

    engine = make_engine(url)
    done, latencies = 0, []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        with transaction(engine) as s:
            for _ in range(per_tx):
                append(
                    s,
                    action="asset.released",
                    entity_type="asset",
                    entity_id=str(uuid.uuid4()),
                    actor=Actor("system", role),
                    now=datetime.now(UTC),
                    region="eu-de",
                    dataset_id="00000000-0000-0000-0000-000000000001",
                    inputs={"original_keyed_digest": os.urandom(32).hex()},
                    outputs={"redacted_sha256": os.urandom(32).hex()},
                    parameters={"detector": "centerface/1.0", "faces": 2},
                )
        latencies.append(time.perf_counter() - t0)
        done += per_tx
    engine.dispose()
    out.put((role, done, latencies))


def _lock_waits(engine: Any, stop: threading.Event, out: list[int]) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with engine.connect() as conn:
        while not stop.wait(0.1):
            out.append(int(conn.execute(query).scalar_one()))
            conn.commit()


def ledger(admin_url: str, *, seconds: float, per_tx: int, processes: int) -> dict[str, Any]:
    from gateway.core.db import make_engine, migrate
    from gateway.lineage.ledger import drain, verify_chain

    roles = ["worker-1", "api-1", "worker-2", "api-2"][:processes]
    with fresh_database(admin_url, "bench_scale_l") as url:
        engine = make_engine(url)
        migrate(engine)
        spawn = multiprocessing.get_context("spawn")
        queue = spawn.Queue()
        procs = [
            spawn.Process(target=_ledger_writer, args=(url, r, seconds, per_tx, queue))
            for r in roles
        ]
        for p in procs:
            p.start()
        stop = threading.Event()
        waits: list[int] = []
        sampler = threading.Thread(target=_lock_waits, args=(engine, stop, waits), daemon=True)
        sampler.start()
        results = [queue.get(timeout=seconds + 120) for _ in procs]
        stop.set()
        sampler.join()
        for p in procs:
            p.join()
        drain(engine)
        with transaction(engine) as s:
            chained = verify_chain(s)
        engine.dispose()
    total = sum(done for _, done, _ in results)
    tx_ms = [1000 * t for _, _, lat in results for t in lat]
    return {
        "processes": roles,
        "records_per_transaction": per_tx,
        "seconds": seconds,
        "records": total,
        "records_verified_in_chain": chained,
        "appends_per_s": round(total / seconds, 1),
        # sampled from pg_stat_activity: writers waiting on a row lock (the chain head)
        "backends_waiting_on_a_lock_mean": round(statistics.fmean(waits or [0]), 2),
        "transaction_ms_p50": round(percentile(tx_ms, 50), 1),
        "transaction_ms_p99": round(percentile(tx_ms, 99), 1),
    }


# -- report -------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--admin-url", default=ADMIN_URL)
    parser.add_argument("--engines", default="embedded,celery")
    parser.add_argument("--ledger-seconds", type=float, default=20.0)
    parser.add_argument("--parts", default="engine,broker,ledger")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
        "image_side_px": SIDE,
        "policy": "default",
        "backlog": [],
        "latency": [],
        "ledger": [],
    }
    images = photos(args.images + 5)  # the last ones warm the redaction processes
    parts = set(args.parts.split(","))
    for engine in args.engines.split(",") if "engine" in parts else []:
        run = ENGINES[engine]
        for workers in (1, 2):
            report["backlog"].append(run["backlog"](args.admin_url, images, workers))
            print(json.dumps(report["backlog"][-1]), flush=True)
        one = report["backlog"][-2]
        service_s = one["wall_s"] / one["images"]
        report["latency"].append(
            run["trickle"](args.admin_url, images[:21] + images[-5:], service_s)
        )
        print(json.dumps(report["latency"][-1]), flush=True)
    if "broker" in parts:
        report["broker_hop"] = broker_hop()
        print(json.dumps(report["broker_hop"]), flush=True)
    if "ledger" in parts:
        for processes, per_tx in ((1, 1), (4, 1), (4, 8)):
            report["ledger"].append(
                ledger(
                    args.admin_url, seconds=args.ledger_seconds, per_tx=per_tx, processes=processes
                )
            )
            print(json.dumps(report["ledger"][-1]), flush=True)
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    write(report, args.label)


ENGINES: dict[str, dict[str, Callable[..., dict[str, Any]]]] = {
    "embedded": {"backlog": embedded_backlog, "trickle": embedded_trickle},
    "celery": {"backlog": celery_backlog, "trickle": celery_trickle},
}


def write(report: dict[str, Any], label: str) -> None:
    stem = f"scale-{report['date'][:10]}" + (f"-{label}" if label else "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (RESULTS / f"{stem}.md").write_text(markdown(report), encoding="utf-8")
    print(f"wrote bench/results/{stem}.json and .md")


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        f"# Scale-out bench, {r['date']} (commit {r['commit']})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores shared with other engineers' work (load "
        f"average {m['load_average_at_start']} at the start, {m['load_average_at_end']} at the "
        f"end), Python {m['python']}, PostgreSQL and RabbitMQ on loopback. Photos "
        f"{r['image_side_px']} px, policy {r['policy']}. Timings on shared cores are noisy; the "
        "ratios within one run are the figures to quote.",
        "",
        "## Backlog: images/s by worker processes",
        "",
        "| engine | workers | images | wall s | images/s | x vs 1 worker | ms/img per worker "
        "| redaction call ms | outside it ms/img | CPU ms/img | cores ours / machine busy |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    one: dict[str, float] = {}
    for b in r["backlog"]:
        one.setdefault(b["engine"], b["images_per_s"])
        lines.append(
            f"| {b['engine']} | {b['workers']} | {b['images']} | {b['wall_s']} | "
            f"{b['images_per_s']} | {b['images_per_s'] / one[b['engine']]:.2f} | "
            f"{b['ms_per_image_per_worker']} | {b.get('redact_call_ms_mean', '')} | "
            f"{b.get('outside_redact_ms_per_image', '')} | {b.get('cpu_ms_per_image', '')} | "
            f"{b.get('cores_used_by_bench', '')} / {b.get('cores_busy_machine', '')} |"
        )
    lines += [
        "",
        "## Database per image (embedded engine; the worker process's own statements)",
        "",
        "| workers | statements | commits (that wrote) | time in statements ms "
        "| lone round trip ms | lone durable commit ms | estimate ms | ledger records |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in r["backlog"]:
        if "db_statements_per_image" in b:
            lines.append(
                f"| {b['workers']} | {b['db_statements_per_image']} | {b['db_commits_per_image']} "
                f"({b.get('db_durable_commits_per_image', '?')}) "
                f"| {b['db_statement_ms_per_image']} | {b['db_round_trip_ms_p50_alone']} "
                f"| {b['db_commit_ms_p50_alone']} | {b['db_ms_per_image_estimate']} "
                f"| {b['ledger_records_per_image_incl_ingest']} |"
            )
    lines += ["", "## Latency (one photo at a time, Poisson arrivals at 60% of one worker)", ""]
    lines += [
        "| engine | jobs | queue p50 ms | queue p99 ms | upload->done p50 ms "
        "| upload->done p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for q in r["latency"]:
        lines.append(
            f"| {q['engine']} | {q['jobs']} | {q.get('queue_latency_ms_p50', '')} "
            f"| {q.get('queue_latency_ms_p99', '')} | {q['sojourn_ms_p50']} "
            f"| {q['sojourn_ms_p99']} |"
        )
    if "broker_hop" in r:
        h = r["broker_hop"]
        lines += [
            "",
            f"RabbitMQ alone (persistent publish -> get -> ack, {h['messages']} messages): "
            f"p50 {h['hop_ms_p50']} ms, p99 {h['hop_ms_p99']} ms.",
        ]
    lines += ["", "## Ledger appends on PostgreSQL", ""]
    lines += [
        "| processes | records/tx | seconds | records | appends/s | tx p50 ms | tx p99 ms "
        "| waiting on the head lock (mean) | chain verified |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for g in r["ledger"]:
        lines.append(
            f"| {len(g['processes'])} | {g['records_per_transaction']} | {g['seconds']} | "
            f"{g['records']} | {g['appends_per_s']} | {g['transaction_ms_p50']} | "
            f"{g['transaction_ms_p99']} | {g.get('backends_waiting_on_a_lock_mean', '')} | "
            f"{g['records_verified_in_chain']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
