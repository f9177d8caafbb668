"""A local Label Studio server for tests and the demo: its own virtual environment
(`scripts/setup_labelstudio.sh`), a copied pre-migrated data directory, a loopback port, its
own process group, an admin user with a legacy API token, and no calls to the internet.

Known pitfalls handled here: Label Studio reads unprefixed USERNAME/PASSWORD/PORT/HOST/DEBUG
(removed from its environment); a busy port makes it move silently to the next one (we check
that the port answers with OUR token); without LABEL_STUDIO_BASE_DATA_DIR it writes to the
home directory; analytics, version checks and Sentry are switched off (no internet).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-labelstudio"
TEMPLATE = VENV / "template-data"
READY_SECONDS = 180.0
WEBHOOK_TIMEOUT_SECONDS = "5"
_STRIPPED = ("USERNAME", "PASSWORD", "PORT", "HOST", "DEBUG", "LABEL_STUDIO_API_KEY")


class LabelStudioNotInstalled(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalLabelStudio:
    """One Label Studio process. `start()` returns once /health answers and the token works."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    username: str = "admin@gateway.local"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    token: str = field(default_factory=lambda: secrets.token_hex(20))
    ssrf_protection: bool = False  # loopback test server: webhooks go to 127.0.0.1
    local_files_root: Path | None = None  # serve local files from here (the alternative route)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "label-studio.log"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _STRIPPED}
        flag = "true" if self.ssrf_protection else "false"
        env.update(
            LABEL_STUDIO_BASE_DATA_DIR=str(self.data_dir / "ls"),
            LABEL_STUDIO_USERNAME=self.username,
            LABEL_STUDIO_PASSWORD=self.password,
            LABEL_STUDIO_USER_TOKEN=self.token,
            LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",  # noqa: S106  (a flag)
            LABEL_STUDIO_HOST=self.url,
            SSRF_PROTECTION_ENABLED=flag,
            ML_BLOCK_LOCAL_IP=flag,
            COLLECT_ANALYTICS="false",
            LATEST_VERSION_CHECK="false",
            SENTRY_DSN="",
            FRONTEND_SENTRY_DSN="",
            PYTHONUNBUFFERED="1",
            # Label Studio gives a webhook 1 s by default, then hangs up: a busy gateway then
            # learns of the annotation only at its next pull. deploy/compose.yaml sets the same.
            WEBHOOK_TIMEOUT=WEBHOOK_TIMEOUT_SECONDS,
        )
        if self.local_files_root is not None:
            env.update(
                LOCAL_FILES_SERVING_ENABLED="true",
                LOCAL_FILES_DOCUMENT_ROOT=str(self.local_files_root),
            )
        return env

    def start(self, *, ready_seconds: float = READY_SECONDS) -> LocalLabelStudio:
        executable = VENV / "bin" / "label-studio"
        if not executable.exists() or not TEMPLATE.exists():
            raise LabelStudioNotInstalled(
                "Label Studio is not installed: run scripts/setup_labelstudio.sh (make setup)"
            )
        if not (self.data_dir / "ls").exists():
            shutil.copytree(TEMPLATE, self.data_dir / "ls")
        command = [
            str(executable),
            "start",
            "--no-browser",
            "--internal-host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "WARNING",
        ]
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603  (our own venv's executable)
                command,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() ends all of it
            )
        self._wait_ready(ready_seconds)
        return self

    def _wait_ready(self, ready_seconds: float) -> None:
        deadline = time.monotonic() + ready_seconds
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"Label Studio exited; see {self.log_file}")
                if self._answers(client):
                    return
                time.sleep(0.25)  # polling a starting server, not timing anything
        self.stop()
        raise TimeoutError(f"Label Studio did not become ready in {ready_seconds} s")

    def _answers(self, client: httpx.Client) -> bool:
        try:
            health = client.get(f"{self.url}/health")
            if health.status_code != 200:
                return False
            # the port answers: make sure it is OUR server (our random token works there)
            who = client.get(
                f"{self.url}/api/current-user/whoami",
                headers={"Authorization": f"Token {self.token}"},
            )
        except httpx.TransportError:
            return False
        if who.status_code != 200 or who.json().get("email") != self.username:
            raise RuntimeError(f"port {self.port} is answered by another server")
        return True

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)
