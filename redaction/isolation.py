"""Redaction in worker processes, with a per-image timeout that really stops the work.

onnxruntime cannot be interrupted from another thread, so each image is redacted in one of N
persistent worker processes (the `spawn` start method: no inherited locks or model state).
Each worker loads its models once, through the registry, before it takes work. For every item
the parent waits at most `timeout_seconds`; past that the worker is SIGKILLed and respawned and
the item is quarantined (`redaction-timeout`). A worker that dies mid-item (segfault, OOM
killer, `os._exit`) quarantines its item (`worker-crashed`) and is respawned likewise.

Only bytes and plain dicts cross the process boundary. Always close the pool (it is a context
manager); worker processes are daemonic as a last resort.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

from redaction.errors import InputError, RedactionError, RedactionFailed, RedactionTimeout
from redaction.policy import RedactionPolicy
from redaction.registry import DetectorNames, build_detectors
from redaction.types import ImageFormat

_STOP_GRACE_SECONDS = 5.0


class WorkerCrashed(RedactionFailed):
    code = "worker-crashed"


class WorkerUnavailable(RedactionFailed):
    code = "worker-unavailable"


@dataclass(frozen=True, slots=True)
class WorkerOutcome:
    """What became of one item: `released` (with `data`), `quarantined` or `rejected`."""

    status: str
    data: bytes | None = None
    output_format: str | None = None
    source_format: str | None = None
    reasons: tuple[dict[str, Any], ...] = ()
    result: dict[str, Any] = field(default_factory=dict)
    """`RedactionResult.as_dict()` when the engine ran: regions, leak check, models, timings."""
    elapsed_ms: float = 0.0
    candidate: bytes | None = None
    """A leak-check quarantine's candidate rendition (PNG, metadata-free), for review only."""

    @property
    def regions(self) -> list[dict[str, Any]]:
        return list(self.result.get("regions", []))

    @classmethod
    def failure(
        cls, error: RedactionError, *, status: str, elapsed_ms: float = 0.0
    ) -> WorkerOutcome:
        reason = {"code": error.code, "message": error.message, "details": dict(error.details)}
        return cls(status=status, reasons=(reason,), elapsed_ms=elapsed_ms)


@dataclass(frozen=True, slots=True)
class _WorkerConfig:
    policy_json: str
    names: DetectorNames
    threads: int
    output_format: str | None
    quality: int
    initializer: Callable[[], None] | None


# --------------------------------------------------------------------------- in the worker


def _redact_plain(data: bytes, config: _WorkerConfig, state: dict[str, Any]) -> dict[str, Any]:
    """Redact one item inside the worker; every outcome becomes a plain dict."""
    from redaction.engine import redact_bytes  # heavy imports stay in the worker

    start = time.perf_counter()
    if "load_error" in state:
        return {"status": "quarantined", "reasons": [state["load_error"]]}
    fmt = ImageFormat(config.output_format) if config.output_format else None
    try:
        out = redact_bytes(
            data,
            policy=state["policy"],
            detectors=state["detectors"],
            output_format=fmt,
            quality=config.quality,
        )
    except InputError as exc:
        reason = {"code": exc.code, "message": exc.message, "details": dict(exc.details)}
        return {"status": "rejected", "reasons": [reason]}
    except Exception as exc:  # a bug must not release anything nor kill the worker: quarantine
        message = f"redaction failed unexpectedly: {type(exc).__name__}: {exc}"
        reason = {"code": RedactionFailed.code, "message": message, "details": {}}
        return {"status": "quarantined", "reasons": [reason]}
    result = out.result.as_dict()
    return {
        "status": result["status"],
        "data": out.data,
        "output_format": str(out.format),
        "source_format": str(out.source_format),
        "reasons": result["reasons"],
        "result": result,
        "elapsed_ms": (time.perf_counter() - start) * 1000,
        "candidate": out.candidate,
    }


def _load(config: _WorkerConfig) -> dict[str, Any]:
    # deferred: OpenCV loads in the worker process, not in the service that starts it
    import cv2

    cv2.setNumThreads(config.threads)
    if config.initializer is not None:
        config.initializer()
    policy = RedactionPolicy.model_validate_json(config.policy_json)
    try:
        detectors = build_detectors(policy, names=config.names, threads=config.threads)
    except RedactionError as exc:
        error = {"code": exc.code, "message": exc.message, "details": dict(exc.details)}
        return {"load_error": error}
    return {"policy": policy, "detectors": detectors}


def _worker_main(conn: Connection, config: _WorkerConfig) -> None:
    """Worker loop: load once, say ready, then answer ('item', bytes) until ('stop', None)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when workers stop
    state = _load(config)
    conn.send(("ready", state.get("load_error")))
    while True:
        try:
            kind, payload = conn.recv()
        except EOFError:
            return
        if kind == "stop":
            return
        conn.send(("done", _redact_plain(payload, config, state)))


# --------------------------------------------------------------------------- in the parent


class _Slot:
    """One worker process and the pipe to it; restarted after a timeout or a crash."""

    def __init__(self, index: int, config: _WorkerConfig, *, startup_timeout: float) -> None:
        self.index = index
        self._config = config
        self._startup_timeout = startup_timeout
        self._ctx = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self.load_error: dict[str, Any] | None = None
        self.ready = threading.Event()
        self.restarts = 0
        self.closing = False
        self._starting = False

    def ensure_running(self) -> None:
        """Replace a dead worker and wait for its models (called by the dispatcher)."""
        self.replace_if_dead()
        if self._conn is None and not self.closing:
            self.spawn()
        if self._starting:
            self.wait_started()

    def spawn(self) -> None:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_worker_main,
            args=(child, self._config),
            name=f"redaction-worker-{self.index}",
            daemon=True,
        )
        try:
            process.start()
        finally:
            child.close()
        self._process, self._conn = process, parent
        self._starting = True

    def wait_started(self) -> None:
        """Wait for the worker's 'ready' message (models loaded)."""
        conn = self._conn
        self._starting = False
        try:
            if conn is None:
                raise WorkerUnavailable("the redaction worker is not running")
            if not conn.poll(self._startup_timeout):
                raise WorkerUnavailable("the redaction worker did not start in time")
            _, self.load_error = conn.recv()
        except (EOFError, OSError) as exc:
            self.kill()
            raise WorkerUnavailable(f"the redaction worker died while starting: {exc}") from exc
        except WorkerUnavailable:
            self.kill()
            raise
        finally:
            self.ready.set()

    @property
    def alive(self) -> bool:
        process = self._process
        return process is not None and process.is_alive()

    def replace_if_dead(self) -> None:
        """A worker that died while idle (killed, OOM) is replaced before the next item is
        sent, so that item is never blamed for a death it did not cause."""
        if self._process is not None and not self._process.is_alive() and not self.closing:
            self.kill()
            self.restarts += 1

    def run(self, data: bytes, *, timeout: float) -> WorkerOutcome:
        """Redact one item in the worker; recycle the worker after a timeout or a crash."""
        self.replace_if_dead()
        if self._conn is None:
            if self.closing:
                raise WorkerUnavailable("the redaction worker pool is closing")
            try:
                self.spawn()
            except OSError as exc:
                raise WorkerUnavailable(f"cannot start a redaction worker: {exc}") from exc
        if self._starting:
            self.wait_started()
        conn = self._conn
        assert conn is not None  # noqa: S101 - wait_started raises otherwise
        start = time.perf_counter()
        try:
            conn.send(("item", data))
            if not conn.poll(timeout):
                self._recycle()
                error: RedactionError = RedactionTimeout(
                    f"redaction took longer than {timeout:g} s; the worker was stopped",
                    timeout_seconds=timeout,
                )
                return WorkerOutcome.failure(error, status="quarantined", elapsed_ms=_ms(start))
            _, payload = conn.recv()
        except (EOFError, OSError) as exc:
            code = self._recycle()
            error = WorkerCrashed(
                f"the redaction worker died while processing this image ({exc or 'no reply'})",
                exitcode=code,
            )
            return WorkerOutcome.failure(error, status="quarantined", elapsed_ms=_ms(start))
        return _outcome(payload, elapsed_ms=_ms(start))

    def _recycle(self) -> int | None:
        """Kill the worker and start a new one; its models load while the caller moves on."""
        code = self.kill()
        if self.closing:
            return code
        self.restarts += 1
        with contextlib.suppress(OSError):  # run() retries the spawn and reports failure
            self.spawn()
        return code

    def abort(self) -> None:
        """Stop at once (from another thread): SIGKILL the worker, never respawn it. The
        dispatcher sees the pipe close and quarantines the item it was waiting for."""
        self.closing = True
        process = self._process
        if process is not None:
            with contextlib.suppress(ValueError, OSError):  # already closed or gone
                process.kill()

    def kill(self) -> int | None:
        """SIGKILL the worker (onnxruntime cannot be interrupted otherwise); its exit code."""
        code = None
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join()
            code = self._process.exitcode
            self._process.close()
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None
        return code

    def stop(self) -> None:
        """Ask the worker to exit; kill it if it does not within a grace period."""
        if self._conn is not None and self._process is not None:
            with contextlib.suppress(OSError):
                self._conn.send(("stop", None))
            self._process.join(_STOP_GRACE_SECONDS)
        self.kill()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _outcome(payload: dict[str, Any], *, elapsed_ms: float) -> WorkerOutcome:
    return WorkerOutcome(
        status=str(payload["status"]),
        data=payload.get("data"),
        output_format=payload.get("output_format"),
        source_format=payload.get("source_format"),
        reasons=tuple(payload.get("reasons", ())),
        result=dict(payload.get("result", {})),
        elapsed_ms=elapsed_ms,
        candidate=payload.get("candidate"),
    )


_Item = tuple[Future[WorkerOutcome], bytes | None]  # None: only make sure the worker runs


class RedactionWorkerPool:
    """N persistent redaction worker processes with a hard per-item timeout.

    `submit(data)` returns a Future of a `WorkerOutcome`; it never raises for the item's own
    sake (input errors come back `rejected`, failures and timeouts `quarantined`).
    `initializer` runs first in every worker (it must be picklable: a module-level function),
    e.g. to `register_detector` a site's own detector named in `detector_names`.
    """

    def __init__(
        self,
        *,
        policy: RedactionPolicy,
        workers: int,
        timeout_seconds: float,
        threads_per_worker: int = 1,
        detector_names: DetectorNames | None = None,
        output_format: ImageFormat | None = ImageFormat.JPEG,
        quality: int = 90,
        initializer: Callable[[], None] | None = None,
        startup_timeout_seconds: float = 300.0,
    ) -> None:
        if workers < 1 or threads_per_worker < 1:
            raise ValueError("workers and threads_per_worker must be >= 1")
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be > 0")
        self.timeout_seconds = timeout_seconds
        config = _WorkerConfig(
            policy_json=policy.model_dump_json(),
            names=detector_names or DetectorNames(),
            threads=threads_per_worker,
            output_format=str(output_format) if output_format else None,
            quality=quality,
            initializer=initializer,
        )
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._closed = False
        self._slots = [
            _Slot(i, config, startup_timeout=startup_timeout_seconds) for i in range(workers)
        ]
        self._threads: list[threading.Thread] = []
        try:
            for slot in self._slots:
                slot.spawn()
        except BaseException:
            for slot in self._slots:
                slot.kill()
            raise
        for slot in self._slots:
            thread = threading.Thread(
                target=self._dispatch, args=(slot,), name=f"redaction-dispatch-{slot.index}"
            )
            thread.daemon = True
            thread.start()
            self._threads.append(thread)

    # ----------------------------------------------------------------- public API

    def submit(self, data: bytes) -> Future[WorkerOutcome]:
        if self._closed:
            raise RuntimeError("the redaction worker pool is closed")
        future: Future[WorkerOutcome] = Future()
        self._queue.put((future, data))
        return future

    def redact(self, data: bytes) -> WorkerOutcome:
        """Submit and wait (the pool enforces the timeout; this never waits forever)."""
        return self.submit(data).result()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until every worker has loaded its models; raise if one could not."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for slot in self._slots:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not slot.ready.wait(left):
                raise WorkerUnavailable("redaction workers are still starting")
            if slot.load_error is not None:
                raise WorkerUnavailable(
                    f"a redaction worker could not load its detectors: "
                    f"{slot.load_error.get('message')}",
                    load_error=slot.load_error,
                )

    @property
    def alive(self) -> bool:
        """Every worker process is running (loading its models counts)."""
        return not self._closed and all(slot.alive for slot in self._slots)

    def revive(self) -> None:
        """Ask the dispatchers to replace workers that died while idle (does not wait)."""
        if self._closed:
            return
        for slot in self._slots:
            if not slot.alive:
                self._queue.put((Future(), None))

    @property
    def worker_pids(self) -> list[int | None]:
        return [slot.pid for slot in self._slots]

    @property
    def restarts(self) -> int:
        return sum(slot.restarts for slot in self._slots)

    def close(self, *, cancel_pending: bool = False) -> None:
        """Finish queued items, stop the workers and wait for them to exit. With
        `cancel_pending` (the default when leaving a `with` block on an exception), queued
        items are cancelled and running ones killed and quarantined instead."""
        if self._closed:
            return
        self._closed = True
        if cancel_pending:
            self._cancel_queued()
            for slot in self._slots:
                slot.abort()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        for slot in self._slots:
            slot.stop()

    def __enter__(self) -> RedactionWorkerPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(cancel_pending=exc_type is not None)

    # ----------------------------------------------------------------- internals

    def _cancel_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[0].cancel()

    @staticmethod
    def _revive(slot: _Slot, future: Future[WorkerOutcome]) -> None:
        try:
            slot.ensure_running()
        except (RedactionError, OSError) as exc:
            future.set_result(WorkerOutcome.failure(WorkerUnavailable(str(exc)), status="failed"))
            return
        future.set_result(WorkerOutcome(status="ready"))

    def _dispatch(self, slot: _Slot) -> None:
        try:
            slot.wait_started()
        except WorkerUnavailable as exc:
            slot.load_error = {"code": exc.code, "message": exc.message, "details": {}}
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, data = item
            if not future.set_running_or_notify_cancel():
                continue
            if data is None:
                self._revive(slot, future)
                continue
            try:
                future.set_result(slot.run(data, timeout=self.timeout_seconds))
            except RedactionError as exc:  # e.g. the respawned worker would not start
                future.set_result(WorkerOutcome.failure(exc, status="quarantined"))
            except BaseException as exc:
                future.set_exception(exc)
                raise
