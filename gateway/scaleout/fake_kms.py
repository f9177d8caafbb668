"""FAKE key service: stands in for a cloud KMS (AWS KMS, Google Cloud KMS, Azure Key Vault,
Vault Transit) where none runs, in tests and on one host. Not a production key store.

It keeps what a KMS keeps: one master key per region (with versions: rotation adds one,
old versions still unwrap until retired) and a gateway-wide key, and credentials: one per
region, and gateway-wide ones (the scheduler's). A caller is who its credential says: a
region's may use its own region's key and the gateway-wide key, a gateway-wide one the
gateway-wide key alone; nothing else (403 otherwise, and every decision goes to the audit
list, whose `caller` is the region, or `gateway`). The state file lives with the service,
never in a gateway replica's data directory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from gateway.core import crypto
from gateway.scaleout.kms import GATEWAY_KEY

log = logging.getLogger(__name__)


def _digest(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


@dataclass
class FakeKmsState:
    path: Path
    keys: dict[str, list[str]] = field(default_factory=dict)  # name -> base64 versions
    credentials: dict[str, str] = field(default_factory=dict)  # sha256(credential) -> region

    @classmethod
    def load(cls, path: Path) -> FakeKmsState:
        if not path.exists():
            return cls(path)
        raw = json.loads(path.read_text())
        return cls(path, raw["keys"], raw["credentials"])

    def save(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"keys": self.keys, "credentials": self.credentials}, fh)

    def add_region(self, region: str) -> str:
        """A master key for `region` (if new) and a new credential for it; returns it."""
        if not region or region == GATEWAY_KEY or ":" in region:
            raise ValueError(f"{region!r} cannot name a region (reserved or malformed)")
        return self._credential_for(region)

    def add_gateway(self) -> str:
        """A new gateway-wide credential: the gateway-wide key only, no region's key (what
        the scheduler holds: lineage checkpoints and gateway secrets, never a dataset key)."""
        return self._credential_for(GATEWAY_KEY)

    def _credential_for(self, owner: str) -> str:
        for name in {GATEWAY_KEY, owner}:
            self.keys.setdefault(name, [base64.b64encode(os.urandom(32)).decode()])
        credential = secrets.token_urlsafe(32)
        self.credentials[_digest(credential)] = owner
        self.save()
        return credential

    def rotate(self, name: str) -> str:
        self.keys[name].append(base64.b64encode(os.urandom(32)).decode())
        self.save()
        return self.current(name)

    def current(self, name: str) -> str:
        return f"kms:{name}:{len(self.keys[name])}"

    def retire(self, key_id: str) -> None:
        """Destroy a version that is not current: nothing wrapped under it opens again."""
        _, name, version = key_id.split(":")
        if key_id == self.current(name):
            raise ValueError("the current version cannot be retired; rotate first")
        self.keys[name][int(version) - 1] = ""
        self.save()

    def secret(self, key_id: str) -> tuple[str, bytes]:
        _, name, version = key_id.split(":")
        if int(version) < 1:
            raise IndexError(version)
        value = self.keys[name][int(version) - 1]
        if not value:
            raise KeyError(f"{key_id} was retired")
        return name, base64.b64decode(value)


class _Refused(Exception):
    pass


class _Gone(Exception):
    """No such key, or a retired version."""


class FakeKms:
    """The service's decisions, apart from HTTP (so its audit is easy to read in tests)."""

    def __init__(self, state: FakeKmsState) -> None:
        self.state = state
        self.audit: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def handle(self, credential: str | None, operation: str, body: dict[str, Any]) -> Any:
        region = self.state.credentials.get(_digest(credential or ""))
        if region is None:
            raise _Refused("unknown credential")
        gateway_wide = region == GATEWAY_KEY
        if operation == "whoami":
            return {
                "region": None if gateway_wide else region,
                "region_key_id": None if gateway_wide else self.state.current(region),
                "gateway_key_id": self.state.current(GATEWAY_KEY),
            }
        if operation in ("rotate", "retire") and gateway_wide:
            self._refuse(region, operation, str(body.get("key_id", "")))
        if operation == "rotate":  # a region rotates its own key only
            with self._lock:
                return {"key_id": self.state.rotate(region)}
        key_id = str(body.get("key_id", ""))
        if operation == "retire":
            return self._retire(region, key_id)
        try:
            name, secret = self.state.secret(key_id)
        except (ValueError, KeyError, IndexError) as exc:
            raise _Gone(f"no such key {key_id} (or it was retired)") from exc
        allowed = {
            "wrap": name in (region, GATEWAY_KEY),
            "unwrap": name in (region, GATEWAY_KEY),
            "derive": name == GATEWAY_KEY,
        }.get(operation, False)
        with self._lock:
            self.audit.append(
                {"operation": operation, "key_id": key_id, "caller": region, "allowed": allowed}
            )
        if not allowed:
            log.warning("fake KMS refused %s of %s to a %s credential", operation, key_id, region)
            raise _Refused(f"a {region} credential may not use {key_id}")
        return self._apply(operation, secret, body)

    def _refuse(self, caller: str, operation: str, key_id: str) -> None:
        """A gateway-wide credential holds no region key: it rotates and retires nothing."""
        with self._lock:
            self.audit.append(
                {"operation": operation, "key_id": key_id, "caller": caller, "allowed": False}
            )
        raise _Refused(f"a {caller} credential may not {operation}")

    def _retire(self, region: str, key_id: str) -> dict[str, str]:
        """A region retires its own old versions (again: a no-op); never the current one."""
        parts = key_id.split(":")
        allowed = len(parts) == 3 and parts[1] == region and key_id != self.state.current(region)
        with self._lock:
            self.audit.append(
                {"operation": "retire", "key_id": key_id, "caller": region, "allowed": allowed}
            )
            if not allowed:
                raise _Refused(f"a {region} credential may not retire {key_id}")
            self.state.retire(key_id)
        return {"retired": key_id}

    @staticmethod
    def _apply(operation: str, secret: bytes, body: dict[str, Any]) -> dict[str, str]:
        kek = crypto.derive(secret, info=b"fake-kms/v1/wrap")
        if operation == "wrap":
            sealed = crypto.seal(_b(body["plaintext"]), key=kek, aad=_b(body["aad"]))
            return {"ciphertext": base64.b64encode(sealed).decode()}
        if operation == "unwrap":
            plain = crypto.unseal(_b(body["ciphertext"]), key=kek, aad=_b(body["aad"]))
            return {"plaintext": base64.b64encode(plain).decode()}
        if operation == "derive":
            info = b"fake-kms/v1/derive/" + str(body["purpose"]).encode()
            return {"key": base64.b64encode(crypto.derive(secret, info=info)).decode()}
        raise _Refused(f"unknown operation {operation}")


def _b(text: Any) -> bytes:
    return base64.b64decode(str(text))


def _handler(kms: FakeKms) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            operation = self.path.removeprefix("/v1/")
            auth = self.headers.get("Authorization", "")
            credential = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
            try:
                length = min(int(self.headers.get("Content-Length", "0")), 1 << 20)
                body = json.loads(self.rfile.read(length) or b"{}")
                status, answer = 200, kms.handle(credential, operation, body)
            except _Refused as exc:
                status, answer = 403, {"error": str(exc)}
            except _Gone as exc:
                status, answer = 410, {"error": str(exc)}
            except Exception as exc:  # a bad request: answered, never a dead thread
                status, answer = 400, {"error": type(exc).__name__}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            del format, args  # quiet: decisions are logged and audited above

    return Handler


def serve(kms: FakeKms, *, host: str, port: int) -> ThreadingHTTPServer:
    """A server bound now (port 0: any free port); call serve_forever or run it on a thread."""
    server = ThreadingHTTPServer((host, port), _handler(kms))
    server.daemon_threads = True
    return server
