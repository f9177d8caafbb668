"""Two workers on one host with the default probe port: the second one says why it stops."""

from __future__ import annotations

import socket
from typing import Any, cast

import pytest

from gateway.scaleout.probes import ProbePortInUse, serve_probes


def test_a_taken_probe_port_is_a_typed_error_naming_the_fix() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ProbePortInUse, match="its own --port") as info:
            serve_probes(cast(Any, None), host="127.0.0.1", port=port)
    assert info.value.code == "probe-port-in-use"
    assert info.value.details == {"host": "127.0.0.1", "port": port}
