"""Probes of a Celery worker process, on a small HTTP port of its own (no API routes):
`/health/live`, `/health/ready` (database and storage answer, its redaction process is alive)
and `/metrics` (the same Prometheus instruments as the API, job counters included)."""

from __future__ import annotations

import errno
import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gateway.core.errors import GatewayError
from gateway.health import readiness
from gateway.metrics import CONTENT_TYPE, render
from gateway.scaleout.tasks import WorkerRuntime

log = logging.getLogger(__name__)


class ProbePortInUse(GatewayError):
    """Another process (often a second worker on the same host) holds the probe port."""

    code, status, title = "probe-port-in-use", 409, "The worker's probe port is taken"


def worker_ready(rt: WorkerRuntime) -> tuple[bool, dict[str, str]]:
    report = readiness(rt.ctx.engine, rt.ctx.store, None)
    checks = dict(report.checks)
    checks["redactor"] = "ok" if bool(getattr(rt.redactor, "alive", True)) else "unable"
    return all(v == "ok" for v in checks.values()), checks


def serve_probes(rt: WorkerRuntime, *, host: str, port: int) -> ThreadingHTTPServer:
    class Probes(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path in ("/health", "/health/live"):
                self._answer(200, "application/json", b'{"status": "live"}')
            elif self.path == "/health/ready":
                ready, checks = worker_ready(rt)
                body = json.dumps({"ready": ready, "region": rt.region, "checks": checks})
                self._answer(200 if ready else 503, "application/json", body.encode())
            elif self.path == "/metrics":
                ready, _ = worker_ready(rt)
                text = render(rt.ctx.engine, now=rt.ctx.clock(), loops={}, ready=ready)
                self._answer(200, CONTENT_TYPE, text)
            else:
                self._answer(404, "application/json", b'{"status": "not found"}')

        def _answer(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args  # probes every few seconds: not worth a log line each

    try:
        server = ThreadingHTTPServer((host, port), Probes)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise ProbePortInUse(
            f"port {port} on {host} is taken (another worker on this host?): give each worker "
            "on a host its own --port",
            host=host,
            port=port,
        ) from None
    server.daemon_threads = True
    return server
