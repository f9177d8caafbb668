"""A webhook's body is read on the event loop before any hop to a worker thread.

Label Studio sends a webhook and hangs up after its `WEBHOOK_TIMEOUT` (1 s by default). Once it
has hung up, the server hands the handler a disconnect instead of the body it already holds, so
a handler that starts late loses the event to the next pull. Every synchronous dependency used
to wait for one of the worker threads first (CI, twice under load: "Label Studio hung up before
its body arrived"). Here every worker thread is taken, and the handler must still ask for the
body: with `Expect: 100-continue`, the server sends `100 Continue` only when it does."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import anyio.to_thread
import pytest

from tests.gateway.live_server import serve_on_loop

pytestmark = pytest.mark.db
ANSWER_WITHIN = 10.0  # a bound on a hang, not a timing: the answer comes at once or never


class HeldThreads:
    """Takes every token of the server's worker-thread limiter, as a burst of slow requests."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.holders: list[object] = []

    def _run(self, coro_fn) -> None:  # type: ignore[no-untyped-def]
        asyncio.run_coroutine_threadsafe(coro_fn(), self.loop).result(ANSWER_WITHIN)

    def take(self) -> None:
        async def take_all() -> None:
            limiter = anyio.to_thread.current_default_thread_limiter()
            while limiter.available_tokens:
                holder = object()
                await limiter.acquire_on_behalf_of(holder)
                self.holders.append(holder)

        self._run(take_all)

    def give_back(self) -> None:
        async def release_all() -> None:
            limiter = anyio.to_thread.current_default_thread_limiter()
            for holder in self.holders:
                limiter.release_on_behalf_of(holder)
            self.holders.clear()

        self._run(release_all)


@pytest.fixture
def busy_gateway(ctx) -> Iterator[tuple[tuple[str, int], HeldThreads]]:
    with serve_on_loop(ctx) as (address, loop):
        held = HeldThreads(loop)
        held.take()
        try:
            yield address, held
        finally:
            held.give_back()


def test_webhook_reads_its_body_while_every_worker_thread_is_busy(busy_gateway) -> None:
    address, held = busy_gateway
    body = b'{"action": "ANNOTATION_CREATED", "annotation": {"id": 7}, "task": {"id": 3}}'
    head = (
        "POST /v1/webhooks/labelstudio/d1 HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nX-Gateway-Webhook-Secret: s\r\n"
        f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection(address, timeout=ANSWER_WITHIN) as sock:
        sock.sendall(head.encode())
        try:
            interim = sock.recv(65536)
        except TimeoutError:
            pytest.fail("the handler did not ask for the body while the worker threads were busy")
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        sock.sendall(body)
        held.give_back()  # the secret check runs on a worker thread
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status = int(answer.split(b"\r\n", 1)[0].split()[1])
    assert status in (401, 403, 404), answer  # no such destination: refused, not a disconnect
