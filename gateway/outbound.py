"""Outbound allow-list: where the gateway and its ML backend may send a token.

A Label Studio destination or an ML gateway URL names a host; the host is resolved and every
address it resolves to is checked **at each connection** (an httpx transport whose network
backend resolves, checks, then connects to exactly the checked address), so a name that
answered with a public address at registration and with 127.0.0.1 later (DNS rebinding)
is refused at the later connection too. Rules, first match wins:

- `metadata-address`: cloud metadata services (169.254.169.254, fd00:ec2::254, ...) are
  refused always, opt-in or not: nothing the gateway talks to lives there;
- `unspecified`, `loopback`, `link-local`, `multicast`, `reserved`: refused unless an admin
  opted in for this destination (`allow_local_addresses`; the local demo and the tests do);
- anything else (public addresses, and private networks where an in-cluster Label Studio
  lives) is allowed.

IPv4 addresses embedded in IPv6 (mapped, NAT64, 6to4) are checked as the IPv4 they carry.
Proxies from the environment are not used for these clients (they would hide the peer).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import httpcore
import httpx

from gateway.core.errors import GatewayError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # Linux connects 0.x.x.x to this host


class AddressRule(Enum):
    METADATA = "metadata-address"
    UNSPECIFIED = "unspecified"
    LOOPBACK = "loopback"
    LINK_LOCAL = "link-local"
    MULTICAST = "multicast"
    RESERVED = "reserved"


class OutboundAddressRefused(GatewayError):
    """A connection the outbound allow-list refused; `details.rule` names the rule."""

    code, status, title = "outbound-address-refused", 403, "Outbound address refused"


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """What one destination may connect to. `allow_local_addresses` is an admin's opt-in."""

    allow_local_addresses: bool = False

    def refusal(self, address: IPAddress) -> AddressRule | None:
        rule = classify(address)
        if rule is None or (rule is not AddressRule.METADATA and self.allow_local_addresses):
            return None
        return rule


def embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4), else the address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def classify(address: IPAddress) -> AddressRule | None:
    """The rule an address falls under, or None for an ordinary (allowed) address."""
    address = embedded_ipv4(address)
    checks = (
        (AddressRule.METADATA, address in METADATA_ADDRESSES),
        (AddressRule.UNSPECIFIED, address.is_unspecified or address in THIS_NETWORK),
        (AddressRule.LOOPBACK, address.is_loopback),
        (AddressRule.LINK_LOCAL, address.is_link_local),
        (AddressRule.MULTICAST, address.is_multicast),
        (AddressRule.RESERVED, address.is_reserved),  # includes 255.255.255.255
    )
    return next((rule for rule, hit in checks if hit), None)


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def checked_addresses(
    host: str, port: int, *, policy: AddressPolicy, resolve: Resolver = system_resolver
) -> list[IPAddress]:
    """Every address `host` resolves to, if policy allows all of them; else a typed refusal
    (one refused address refuses the name: a name mixing public and local is suspicious)."""
    try:
        resolved = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(host, port)]
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
    for address in resolved:
        rule = policy.refusal(address)
        if rule is not None:
            raise OutboundAddressRefused(
                f"{host} resolves to {address}, a {rule.value} address; an admin may opt this "
                "destination in to local addresses (never to metadata addresses)",
                host=host,
                address=str(address),
                rule=rule.value,
            )
    return resolved


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's network backend, resolving and checking every connection it opens."""

    def __init__(self, policy: AddressPolicy, *, resolve: Resolver = system_resolver) -> None:
        self.policy, self.resolve = policy, resolve
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = checked_addresses(host, port, policy=self.policy, resolve=self.resolve)
        error: Exception | None = None
        for address in addresses:  # connect to exactly what was checked, never re-resolve
            try:
                stream = self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
                continue
            _check_peer(stream, address)
            return stream
        raise error or httpcore.ConnectError(f"no address for {host!r}")

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        del timeout, socket_options
        raise OutboundAddressRefused("unix sockets are not outbound destinations", path=path)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _check_peer(stream: httpcore.NetworkStream, expected: IPAddress) -> None:
    sock = stream.get_extra_info("socket")
    peer = ipaddress.ip_address(str(sock.getpeername()[0]).split("%", 1)[0])
    if embedded_ipv4(peer) != embedded_ipv4(expected):
        stream.close()
        raise OutboundAddressRefused(
            "the connection reached another address than the one checked",
            address=str(peer),
            rule="peer-mismatch",
        )


def guarded_transport(
    policy: AddressPolicy, *, resolve: Resolver = system_resolver
) -> httpx.HTTPTransport:
    """An httpx transport that checks every connection against `policy` (no env proxies)."""
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx builds its httpcore pool itself; give that pool the checking backend
    transport._pool._network_backend = GuardedBackend(policy, resolve=resolve)
    return transport


def guarded_client(policy: AddressPolicy, **kwargs: Any) -> httpx.Client:
    """An httpx client for outbound calls: checked connections, no redirects, no env proxies."""
    return httpx.Client(
        transport=guarded_transport(policy), trust_env=False, follow_redirects=False, **kwargs
    )
