"""Outbound allow-list (issue 21): a destination or ML gateway URL that reaches a loopback,
unspecified, link-local or metadata address gets no connection, hence no token, unless an
admin opted in (never for metadata); the check runs at every connection (DNS rebinding).
Real sockets: a listener that must stay untouched."""

from __future__ import annotations

import ipaddress
import select
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlmodel import select as sql_select

from gateway.core.db import transaction
from gateway.core.models import Destination
from gateway.labelstudio.client import LabelStudioClient, RetryPolicy
from gateway.labelstudio.destinations import DestinationSpec, register_destination
from gateway.lineage import Actor
from gateway.outbound import (
    AddressPolicy,
    AddressRule,
    OutboundAddressRefused,
    classify,
    guarded_transport,
)
from ml_backend.gateway_client import HttpGatewayImages
from ml_backend.images import ImageRefused
from redaction.policy import Limits

TOKEN = "ls-token-that-must-not-leave"
STRICT = AddressPolicy()
OPTED_IN = AddressPolicy(allow_local_addresses=True)
NO_RETRY = RetryPolicy(attempts=1)


class Listener:
    """A real TCP listener; `serve()` answers each request with 200 and keeps what it got."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []

    def untouched(self) -> bool:
        """No connection was ever made: nothing waits in the backlog, nothing was served."""
        return not select.select([self.sock], [], [], 0)[0] and not self.received

    @contextmanager
    def serve(self) -> Iterator[None]:
        stop = threading.Event()

        def loop() -> None:
            self.sock.settimeout(0.2)
            while not stop.is_set():
                try:
                    conn, _ = self.sock.accept()
                except TimeoutError:
                    continue
                with conn:
                    self.received.append(conn.recv(65536))
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
                    )

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(5)


@pytest.fixture
def listener() -> Iterator[Listener]:
    lis = Listener()
    yield lis
    lis.sock.close()


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("169.254.169.254", AddressRule.METADATA),
        ("fd00:ec2::254", AddressRule.METADATA),
        ("::ffff:169.254.169.254", AddressRule.METADATA),
        ("64:ff9b::a9fe:a9fe", AddressRule.METADATA),  # NAT64 form of 169.254.169.254
        ("0.0.0.0", AddressRule.UNSPECIFIED),  # noqa: S104
        ("0.1.2.3", AddressRule.UNSPECIFIED),
        ("::", AddressRule.UNSPECIFIED),
        ("127.0.0.1", AddressRule.LOOPBACK),
        ("127.8.9.10", AddressRule.LOOPBACK),
        ("::1", AddressRule.LOOPBACK),
        ("::ffff:127.0.0.1", AddressRule.LOOPBACK),
        ("169.254.1.1", AddressRule.LINK_LOCAL),
        ("fe80::1", AddressRule.LINK_LOCAL),
        ("224.0.0.1", AddressRule.MULTICAST),
        ("255.255.255.255", AddressRule.RESERVED),
        ("10.0.0.5", None),
        ("192.168.1.10", None),
        ("93.184.215.14", None),
        ("2a00:1450:4001:82b::200e", None),
    ],
)
def test_address_rules(address: str, rule: AddressRule | None) -> None:
    ip = ipaddress.ip_address(address)
    assert classify(ip) is rule
    assert STRICT.refusal(ip) is rule
    assert OPTED_IN.refusal(ip) is (AddressRule.METADATA if rule is AddressRule.METADATA else None)


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "localhost"])  # noqa: S104
def test_no_token_reaches_a_local_address_without_the_opt_in(listener, host: str) -> None:
    client = LabelStudioClient(f"http://{host}:{listener.port}", TOKEN, policy=STRICT)
    try:
        with pytest.raises(OutboundAddressRefused) as refused:
            client.whoami()  # the call that carries the token
        with pytest.raises(OutboundAddressRefused):
            client.health()
    finally:
        client.close()
    assert refused.value.details["rule"] in ("loopback", "unspecified")
    assert refused.value.problem()["code"] == "outbound-address-refused"
    assert listener.untouched()


def test_registering_a_destination_checks_before_sending_the_token(ctx, listener) -> None:
    spec = {
        "name": "probe",
        "url": f"http://127.0.0.1:{listener.port}",
        "token": TOKEN,
        "region": "eu-de",
        "gateway_url": "https://gateway.example",
    }
    with pytest.raises(OutboundAddressRefused), transaction(ctx.engine) as s:
        register_destination(
            ctx, s, DestinationSpec.model_validate(spec), actor=Actor("cli", "t"), retry=NO_RETRY
        )
    assert listener.untouched()
    with transaction(ctx.engine) as s:
        assert s.exec(sql_select(Destination)).all() == []


def test_the_opt_in_lets_a_loopback_destination_through(listener) -> None:
    client = LabelStudioClient(f"http://127.0.0.1:{listener.port}", TOKEN, policy=OPTED_IN)
    try:
        with listener.serve():
            assert client.health() is True
    finally:
        client.close()
    assert listener.received and listener.received[0].startswith(b"GET /health ")


def test_a_name_rebound_to_loopback_is_refused_at_the_next_connection() -> None:
    """DNS rebinding: the name answered an allowed address first, loopback afterwards."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))  # no packet is sent: it picks the outbound address
        own = probe.getsockname()[0]
    except OSError:
        pytest.skip("this machine has no non-loopback address")
    finally:
        probe.close()
    if classify(ipaddress.ip_address(own)) is not None:
        pytest.skip(f"this machine's address {own} is itself a local one")
    listener = Listener("0.0.0.0")  # noqa: S104  (reachable at both addresses)
    answers = iter([[own], ["127.0.0.1"]])
    transport = guarded_transport(STRICT, resolve=lambda *_: next(answers))
    try:
        with listener.serve(), httpx.Client(transport=transport) as client:
            url = f"http://labelstudio.test:{listener.port}/health"
            assert client.get(url).status_code == 200  # connection closed after the answer
            with pytest.raises(OutboundAddressRefused) as refused:
                client.get(url, headers={"Authorization": f"Token {TOKEN}"})
    finally:
        listener.sock.close()
    assert refused.value.details == {
        "host": "labelstudio.test",
        "address": "127.0.0.1",
        "rule": "loopback",
    }
    assert len(listener.received) == 1 and TOKEN.encode() not in listener.received[0]


def test_the_ml_backend_sends_no_key_to_a_local_gateway_without_the_opt_in(listener) -> None:
    images = HttpGatewayImages(
        f"http://127.0.0.1:{listener.port}",
        api_key="lpg_ml_key_that_must_not_leave",
        region="eu-de",
        limits=Limits(),
        policy=STRICT,
    )
    try:
        with pytest.raises(ImageRefused) as refused:
            images.fetch({"gateway_asset_id": str(uuid.uuid4())})
    finally:
        images.close()
    assert refused.value.code == "outbound-address-refused"
    assert listener.untouched()
