"""One upload must not stall the API (issue 21): while the gateway decodes large images,
`/health` keeps answering. No timing: the test counts `/health` answers that arrive after
the upload's body was sent and before the upload's own answer. Validation on the event loop
allows at most one (a request slipping in before the decode starts)."""

from __future__ import annotations

import select
import socket
import uuid

import pytest

from gateway.core.models import Role
from tests.gateway.bad_inputs import flat_png
from tests.gateway.live_server import serve
from tests.gateway.test_api import make_key

pytestmark = pytest.mark.db
SIDE = 7000  # 49 Mpx, just under the 50 Mpx default limit; ~140 KB as a flat PNG
WANTED = 10  # /health answers seen while the upload is outstanding


def multipart(files: list[tuple[str, bytes]]) -> tuple[str, bytes]:
    boundary = uuid.uuid4().hex
    parts = [
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + b"\r\n"
        for name, data in files
    ]
    return boundary, b"".join(parts) + f"--{boundary}--\r\n".encode()


def _health(address: tuple[str, int]) -> bytes:
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer


def test_health_answers_while_large_images_are_validated(ctx, dataset) -> None:
    token = make_key(ctx, Role.ADMIN)
    png = flat_png(SIDE, SIDE)
    boundary, body = multipart([(f"big-{i}.png", png) for i in range(2)])
    head = (
        f"POST /v1/datasets/{dataset.id}/assets HTTP/1.1\r\nHost: g\r\n"
        f"Authorization: Bearer {token}\r\nConnection: close\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with serve(ctx) as address, socket.create_connection(address, timeout=120) as upload:
        upload.sendall(head + body)
        answered = 0
        while answered < WANTED:
            if select.select([upload], [], [], 0)[0]:  # the upload has answered: too late
                break
            assert _health(address).startswith(b"HTTP/1.1 200")
            answered += 1
        response = b""
        while chunk := upload.recv(65536):
            response += chunk
    assert answered == WANTED, f"only {answered} /health answers while the upload ran"
    assert response.startswith(b"HTTP/1.1 201"), response[:300]
