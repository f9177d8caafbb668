"""`privacy-gateway fake-kms`: the FAKE key service that stands in for a cloud KMS where none
runs (tests, one-host trials). Production points GATEWAY_KMS_URL at a real key service."""

# deferred imports: a command imports what it runs inside its function, so that `--help`
# and every other command start without loading the service, the ORM or the models.
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.common import out

app = typer.Typer(no_args_is_help=True, help=__doc__)
State = Annotated[Path, typer.Option(help="the service's state file (never a data directory)")]


@app.command("add-region")
def add_region(region: str, state: State) -> None:
    """Create REGION's master key (if new) and print a new credential for it."""
    from gateway.scaleout.fake_kms import FakeKmsState

    out.print(FakeKmsState.load(state).add_region(region), markup=False, highlight=False)


@app.command("add-gateway")
def add_gateway(state: State) -> None:
    """Print a new gateway-wide credential: the gateway-wide key only, no region's key (the
    scheduler's: it signs lineage checkpoints and reads gateway secrets, never a dataset key)."""
    from gateway.scaleout.fake_kms import FakeKmsState

    out.print(FakeKmsState.load(state).add_gateway(), markup=False, highlight=False)


@app.command("serve")
def serve(
    state: State,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8200,
) -> None:
    """Serve the fake key service until interrupted."""
    from gateway.scaleout.fake_kms import FakeKms, FakeKmsState
    from gateway.scaleout.fake_kms import serve as bind

    server = bind(FakeKms(FakeKmsState.load(state)), host=host, port=port)
    out.print(f"FAKE key service on http://{host}:{server.server_address[1]}")
    try:
        server.serve_forever()
    finally:
        server.server_close()
