"""Worker hosts as Linux network namespaces: each has only a veth link to the root namespace,
where `socat` forwards the link's address to the services that listen on 127.0.0.1 only
(PostgreSQL, RabbitMQ, the key service). Needs root, `ip netns` and socat."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field

import pytest


def netns_or_skip() -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (ip netns)")
    for tool in ("ip", "socat"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing (scripts/setup.sh installs socat)")
    probe = f"lpgp{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"ip netns is not available here: {made.stderr.decode().strip()}")
    subprocess.run(["ip", "netns", "del", probe], check=True)


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@dataclass
class Host:
    """One namespace; `gateway_ip` is the root side of its veth (where socat listens)."""

    name: str
    gateway_ip: str
    own_ip: str
    outer: str  # the root side of the veth
    forwarders: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def create(cls, label: str) -> Host:
        tag = uuid.uuid4().hex[:6]
        net = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}"  # noqa: S311
        outer, inner = f"lpgo{tag}", f"lpgi{tag}"
        host = cls(f"lpg-{label}-{tag}", f"{net}.1", f"{net}.2", outer)
        _run("ip", "netns", "add", host.name)
        _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        _run("ip", "link", "set", inner, "netns", host.name)
        _run("ip", "addr", "add", f"{host.gateway_ip}/30", "dev", outer)
        _run("ip", "link", "set", outer, "up")
        for argv in (
            ("ip", "addr", "add", f"{host.own_ip}/30", "dev", inner),
            ("ip", "link", "set", inner, "up"),
            ("ip", "link", "set", "lo", "up"),
        ):
            _run("ip", "netns", "exec", host.name, *argv)
        return host

    def forward(self, port: int) -> None:
        """Reach 127.0.0.1:`port` of the root namespace at `gateway_ip`:`port`."""
        self.forwarders.append(
            subprocess.Popen(
                [
                    "socat",
                    f"TCP-LISTEN:{port},bind={self.gateway_ip},fork,reuseaddr",
                    f"TCP:127.0.0.1:{port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def reaches(self, address: str, port: int) -> bool:
        probe = f"import socket; socket.create_connection(({address!r}, {port}), timeout=2)"
        done = subprocess.run(
            ["ip", "netns", "exec", self.name, sys.executable, "-c", probe],
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def destroy(self) -> None:
        for proc in self.forwarders:
            proc.kill()
            proc.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", self.outer], check=False, capture_output=True)
