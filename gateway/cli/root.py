"""`privacy-gateway`: the command line. Commands translate arguments, call the core, print."""

# deferred imports: a command imports what it runs inside its function, so that `--help`
# and every other command start without loading the service, the ORM or the models.
from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from gateway.cli.common import (
    CLI_ACTOR_ID,
    PROG,
    JsonFlag,
    err,
    in_tx,
    opened,
    out,
    package_version,
    print_json,
    progress_bar,
)
from gateway.core.errors import GatewayError
from gateway.vocabulary import LegalBasis, Role

# plain (click) help: rich's help renderer costs more than the 0.5 s a `--help` may take
app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__, rich_markup_mode=None)
keys_app = typer.Typer(no_args_is_help=True, help="API keys with roles, scope and expiry.")
datasets_app = typer.Typer(no_args_is_help=True, help="Datasets and what they are for.")
app.add_typer(keys_app, name="api-keys")
app.add_typer(datasets_app, name="datasets")


def _version(value: bool) -> None:
    if value:
        out.print(f"{PROG} {package_version()}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    del version


@app.command()
def init() -> None:
    """Create the data directory, the master key (if none) and the database schema, or migrate
    an existing schema to the newest version (the only command that migrates)."""
    with opened(create_master_key=True, migrate_schema=True) as ctx:
        out.print(f"data directory: {ctx.settings.data_dir.resolve()}")
        out.print(f"database:       {ctx.engine.url.render_as_string(hide_password=True)}")
        out.print(f"master key id:  {ctx.keys.master.key_id}")


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="admin | ingest | compliance | ml")],
    label: Annotated[str, typer.Option()] = "",
    dataset: Annotated[list[str] | None, typer.Option(help="limit to these datasets")] = None,
    expires_days: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Create an API key and print it once."""
    from gateway.apikeys import create_api_key
    from gateway.datasets import get_dataset
    from gateway.lineage.ledger import Actor

    with opened(create_master_key=True) as ctx:
        now = ctx.clock()

        def make(session: Any) -> str:
            scope = [get_dataset(session, d).id for d in dataset] if dataset else None
            _, token = create_api_key(
                session,
                role=role,
                label=label,
                dataset_scope=scope,
                expires_at=now + timedelta(days=expires_days) if expires_days else None,
                pepper=ctx.keys.api_key_pepper(),
                actor=Actor("cli", CLI_ACTOR_ID),
                now=now,
                region=ctx.settings.region,
            )
            return token

        token = in_tx(ctx, make)
    err.print("[yellow]Store this key now; it is not shown again.[/yellow]")
    out.print(token)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@keys_app.command("list")
def keys_list(as_json: JsonFlag = False) -> None:
    """API keys (never their secrets): id, role, state, label, scope, expiry."""
    from gateway.apikeys import list_api_keys

    with opened() as ctx:
        rows = in_tx(ctx, list_api_keys)
    if as_json:
        print_json(
            [
                {
                    "id": r.id,
                    "role": str(r.role),
                    "label": r.label,
                    "dataset_scope": r.dataset_scope,
                    "created_at": _iso(r.created_at),
                    "expires_at": _iso(r.expires_at),
                    "revoked_at": _iso(r.revoked_at),
                }
                for r in rows
            ]
        )
        return
    for row in rows:
        state = "revoked" if row.revoked_at else "active"
        out.print(f"{row.id}  {row.role:<10} {state:<8} {row.label}")


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    from gateway.apikeys import revoke_api_key
    from gateway.lineage.ledger import Actor

    with opened() as ctx:
        in_tx(
            ctx,
            lambda s: revoke_api_key(
                s,
                key_id,
                actor=Actor("cli", CLI_ACTOR_ID),
                now=ctx.clock(),
                region=ctx.settings.region,
                pepper=ctx.keys.api_key_pepper(),
            ),
        )
    out.print(f"revoked {key_id}")


@keys_app.command("seal")
def keys_seal() -> None:
    """Seal keys created before sealed keys existed (check `api-keys list` first: a sealed
    row is vouched for; until then such a key does not authenticate)."""
    from gateway.apikeys import seal_unsealed_keys

    with opened() as ctx:
        sealed = in_tx(ctx, lambda s: seal_unsealed_keys(s, pepper=ctx.keys.api_key_pepper()))
    out.print(f"sealed {len(sealed)} key(s): {', '.join(sealed) or 'none'}")


@datasets_app.command("create")
def datasets_create(
    name: Annotated[str, typer.Argument()],
    purpose: Annotated[str, typer.Option()],
    controller: Annotated[str, typer.Option()],
    legal_basis: Annotated[LegalBasis, typer.Option()],
    subjects: Annotated[list[str], typer.Option(help="categories of data subjects")],
    data_category: Annotated[list[str], typer.Option(help="categories of personal data")],
    label: Annotated[list[str], typer.Option(help="ontology label as NAME:CONTROL (box, ...)")],
    instructions: Annotated[str, typer.Option()] = "",
) -> None:
    """Create a dataset with its purpose, controller, legal basis and ontology."""
    from gateway.datasets import DatasetSpec, create_dataset
    from gateway.lineage.ledger import Actor

    labels = [dict(zip(("name", "control"), item.split(":", 1), strict=True)) for item in label]
    spec = DatasetSpec.model_validate(
        {
            "name": name,
            "purpose": purpose,
            "controller": controller,
            "legal_basis": legal_basis,
            "data_subject_categories": subjects,
            "personal_data_categories": data_category,
            "ontology": {"labels": labels, "instructions": instructions},
        }
    )
    with opened(create_master_key=True) as ctx:
        ds = in_tx(ctx, lambda s: create_dataset(s, ctx, spec, actor=Actor("cli", CLI_ACTOR_ID)))
    out.print(f"created dataset {ds.name} ({ds.id})")


@datasets_app.command("list")
def datasets_list(as_json: JsonFlag = False) -> None:
    """Datasets: id, name, legal basis (with --json: purpose and controller too)."""
    from gateway.datasets import list_datasets

    with opened() as ctx:
        rows = in_tx(ctx, list_datasets)
    if as_json:
        print_json(
            [
                {
                    "id": ds.id,
                    "name": ds.name,
                    "purpose": ds.purpose,
                    "controller": ds.controller,
                    "legal_basis": str(ds.legal_basis),
                    "created_at": _iso(ds.created_at),
                }
                for ds in rows
            ]
        )
        return
    for ds in rows:
        out.print(f"{ds.id}  {ds.name}  ({ds.legal_basis})")


@app.command()
def ingest(
    source: Annotated[str, typer.Argument(help="a folder, or s3://bucket/prefix")],
    dataset: Annotated[str, typer.Option(help="dataset name or id")],
    process: Annotated[bool, typer.Option(help="redact right after import")] = True,
    endpoint_url: Annotated[
        str | None, typer.Option(help="s3:// only: an S3-compatible endpoint (MinIO, Ceph...)")
    ] = None,
    s3_region: Annotated[str | None, typer.Option(help="s3:// only: the S3 region")] = None,
    path_style: Annotated[bool, typer.Option(help="s3:// only: path-style addressing")] = False,
) -> None:
    """Import every file under SOURCE, a folder or s3://bucket/prefix (credentials of an
    s3:// source: the AWS_* environment or profile), resumable and idempotent; then redact."""
    with opened() as ctx, progress_bar() as bar:
        task = bar.add_task("importing", total=None)

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if source.startswith("s3://"):
            summary = _ingest_s3(ctx, source, dataset, step, endpoint_url, s3_region, path_style)
        else:
            summary = _ingest_folder(ctx, source, dataset, step)
        out.print(summary.describe())
        if process:
            _process(ctx, bar)
    if summary.rejected:
        sys.exit(2)


def _ingest_folder(ctx: Any, source: str, dataset: str, step: Any) -> Any:
    from gateway.ingest_dir import ingest_directory

    directory = Path(source)
    if not directory.is_dir():
        raise typer.BadParameter(f"{source!r} is not a folder (or give s3://bucket/prefix)")
    return ingest_directory(ctx, directory, dataset_ref=dataset, progress=step)


def _ingest_s3(
    ctx: Any,
    source: str,
    dataset: str,
    step: Any,
    endpoint_url: str | None,
    s3_region: str | None,
    path_style: bool,
) -> Any:
    from gateway.core.settings import S3Bucket
    from gateway.core.storage_s3 import s3_client
    from gateway.ingest_s3 import S3Source, ingest_prefix

    parsed = S3Source.parse(source)
    client = s3_client(
        S3Bucket(
            bucket=parsed.bucket,
            endpoint_url=endpoint_url,
            s3_region=s3_region,
            addressing_style="path" if path_style else "auto",
            default_credentials=True,
        )
    )
    return ingest_prefix(ctx, parsed, client=client, dataset_ref=dataset, progress=step)


def _process(ctx: Any, bar: Progress) -> None:
    if ctx.settings.broker_configured:  # the region's Celery workers redact them
        from gateway.scaleout.broker import celery_app
        from gateway.scaleout.relay import CeleryPublisher, dispatch

        sent = dispatch(ctx, CeleryPublisher(celery_app(ctx.settings)))
        out.print(f"queued for the workers: {sent} job(s) (GATEWAY_BROKER_URL is set)")
        return
    from gateway.processing import process_pending

    task = bar.add_task("redacting", total=None)
    result = process_pending(
        ctx, progress=lambda done, total: bar.update(task, completed=done, total=total)
    )
    out.print(result.describe())


@app.command("process")
def process_cmd() -> None:
    """Run every queued redaction job (jobs left by a crash are picked up again)."""
    with opened() as ctx, progress_bar() as bar:
        _process(ctx, bar)


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Run the REST API (OpenAPI at /docs) and, unless GATEWAY_ROLE=api, the job workers."""
    from gateway.service import run_service

    run_service(host=host, port=port)


@app.command()
def worker(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="health and metrics only")] = 8001,
    queues: Annotated[
        str | None, typer.Option(help="with a broker: queues to consume (its region's only)")
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(help="with a broker: this worker's region (must match its KMS credential)"),
    ] = None,
) -> None:
    """Run redaction jobs. With GATEWAY_BROKER_URL: a Celery worker of one region's queue;
    else the embedded job workers and schedules (/health/ready and /metrics on the port)."""
    from gateway.core.settings import Settings

    settings = Settings()
    if settings.broker_configured:
        from gateway.logs import configure_logging
        from gateway.scaleout.worker import run_worker

        configure_logging(settings.log_level)
        names = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
        run_worker(settings, queues=names, region=region, probes=(host, port))
        return
    from gateway.service import run_service

    run_service(host=host, port=port, role="worker")


@app.command()
def scheduler() -> None:
    """With GATEWAY_BROKER_URL: sign lineage checkpoints, relay jobs the broker lost, and send
    retention, the annotation reconcile and review pulls to the region workers. Run one per
    gateway; with a key service give it the gateway-wide credential (a region's is refused)."""
    from gateway.core.settings import Settings
    from gateway.logs import configure_logging
    from gateway.scaleout.worker import run_scheduler

    settings = Settings()
    if not settings.broker_configured:
        raise GatewayError("the scheduler needs GATEWAY_BROKER_URL (without one, `serve` runs it)")
    configure_logging(settings.log_level)
    run_scheduler(settings)


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="where the demo keeps everything")] = Path(
        "var/demo"
    ),
    labelstudio: Annotated[
        bool, typer.Option(help="then sync to a local Label Studio and serve until Ctrl-C")
    ] = False,
) -> None:
    """Ingest the bundled sample photos, redact them and show where everything went."""
    from gateway.demo import run_demo

    run_demo(data_dir, out=out, bar_factory=progress_bar)
    if labelstudio:
        from gateway.labelstudio.demo import serve_demo, wait_for_interrupt

        serve_demo(data_dir, dataset="demo-street-scenes", out=out, hold=wait_for_interrupt)


from gateway.cli import (  # noqa: E402  (sub-apps; none imports this module)
    fake_kms,
    lineage,
    ml,
    policies,
    pseudonymisation,
    redact,
    reports,
    review,
    sync,
    verify,
)

for _module in (lineage, redact, reports, policies, pseudonymisation, sync, review):
    app.add_typer(_module.app)
app.command()(verify.verify)  # also run on its own by gateway.cli.entry
app.add_typer(ml.ml_app, name="ml-backend")
app.add_typer(fake_kms.app, name="fake-kms")

__all__ = ["app"]
