"""`privacy-gateway policies | retention | erase | erasure`: policies as code, retention runs,
erasure requests. Commands translate arguments and print; the core is in gateway.policy."""

# deferred imports: a command imports what it runs inside its function, so that `--help`
# and every other command start without loading the service, the ORM or the models.
from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from gateway.cli.common import JsonFlag, cli_actor, err, in_tx, opened, out, print_json
from gateway.policy.errors import PolicyInvalid
from redaction.errors import RedactionError

app = typer.Typer()  # merged into the root app by gateway.cli.root

policies_app = typer.Typer(no_args_is_help=True, help="Policy documents: validate, diff, activate.")
retention_app = typer.Typer(no_args_is_help=True, help="Retention runs and legal holds.")
erasure_app = typer.Typer(no_args_is_help=True, help="The erasure register (GDPR Art. 17).")
app.add_typer(policies_app, name="policies")
app.add_typer(retention_app, name="retention")
app.add_typer(erasure_app, name="erasure")


def say(text: str) -> None:
    """One logical line per message: no wrapping, markup or highlighting of user data."""
    out.print(text, highlight=False, soft_wrap=True, markup=False)


def _print_problems(exc: PolicyInvalid) -> None:
    problems = exc.details.get("errors") or []
    if not problems:
        err.print(f"[red]error[/red] {exc.message}", highlight=False, soft_wrap=True)
    for p in problems:
        where = f"{p['file']}:{p['line']}:{p['column']}" if p.get("line") else p["file"]
        err.print(
            f"[red]error[/red] {where}: {p['field'] or '(document)'}: {p['problem']} "
            f"(expected {p['expected']})",
            highlight=False,
            soft_wrap=True,
        )


@policies_app.command("validate")
def validate(
    files: Annotated[
        list[Path],
        typer.Argument(help="policy documents, redaction policies or the policy JSON Schema"),
    ],
) -> None:
    """Check policy files; each is recognised by what it holds: a policy document (against the
    schema and the region catalogue; errors name the line), a redaction policy (as `redact
    --policy` reads it) or the committed JSON Schema (must be current)."""
    failed = False
    for path in files:
        try:
            say(f"ok  {path}  {_validate_one(path)}")
        except PolicyInvalid as exc:
            _print_problems(exc)
            failed = True
        except RedactionError as exc:
            err.print(f"[red]error[/red] {exc.message}", highlight=False, soft_wrap=True)
            failed = True
    if failed:
        sys.exit(2)


def _validate_one(path: Path) -> str:
    """What the valid file is (one line), or raise PolicyInvalid / RedactionError."""
    from gateway.policy.document import policy_digest
    from gateway.policy.file_kinds import PolicyFileKind, classify
    from gateway.policy.jsonschema import SCHEMA_ID, render_schema
    from gateway.policy.loader import load_policy_file

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyInvalid(f"cannot read {path}: {exc}", file=str(path)) from exc
    kind = classify(text, schema_id=SCHEMA_ID)
    if kind is PolicyFileKind.JSON_SCHEMA:
        if text != render_schema():
            raise PolicyInvalid(
                f"{path} is not the current JSON Schema of policy documents: regenerate it "
                f"with `privacy-gateway policies schema --output {path}`",
                file=str(path),
            )
        return f"{kind} (current)"
    if kind is PolicyFileKind.REDACTION:
        from redaction.policy_file import load_policy_file as load_redaction_policy

        load_redaction_policy(path)
        return f"{kind}  sha256:{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    doc = load_policy_file(path)
    return f"{doc.name}  sha256:{policy_digest(doc)[:16]}"


def _load_ref(ref: str) -> Any:
    """A file path, or a stored version (id, NAME@VERSION, NAME)."""
    from gateway.policy.loader import load_policy_file
    from gateway.policy.schema import PolicyDocument
    from gateway.policy.versions import get_version

    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_policy_file(path)
    with opened() as ctx:
        row = in_tx(ctx, lambda s: get_version(s, ref))
    return PolicyDocument.model_validate(row.document)


@policies_app.command("diff")
def diff(
    a: Annotated[str, typer.Argument(help="file, or stored version (NAME@VERSION or id)")],
    b: Annotated[str, typer.Argument(help="file, or stored version (NAME@VERSION or id)")],
) -> None:
    """Show which fields differ between two policies (exit 1 if any)."""
    from gateway.policy.document import diff_documents

    try:
        changes = diff_documents(_load_ref(a), _load_ref(b))
    except PolicyInvalid as exc:
        _print_problems(exc)
        sys.exit(2)
    for c in changes:
        say(f"{c['field']}: {c['old']!r} -> {c['new']!r}")
    if not changes:
        say("no differences")
    sys.exit(1 if changes else 0)


@policies_app.command("activate")
def activate_cmd(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    dataset: Annotated[str | None, typer.Option(help="bind this dataset (name or id)")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what it would change and withdraw; do nothing")
    ] = False,
    acknowledge_weakening: Annotated[
        list[str] | None,
        typer.Option(
            help="name a protection the policy switches off (faces, plates, leak_check); "
            "repeat for each: without it such a policy is refused"
        ),
    ] = None,
) -> None:
    """Store FILE as an immutable policy version, activate it, and bind DATASET to it. The
    Label Studio tasks it forbids are listed (withdrawn on the next sync or reconcile)."""
    from gateway.labelstudio.residency_withdrawal import withdrawn_by_policy
    from gateway.policy.loader import load_policy_file
    from gateway.policy.versions import activate, preview_activation

    try:
        doc = load_policy_file(file)
    except PolicyInvalid as exc:
        _print_problems(exc)
        sys.exit(2)
    with opened() as ctx:

        def plan(s: Any) -> tuple[Any, list[Any]]:
            preview = preview_activation(s, doc, dataset_ref=dataset)
            return preview, withdrawn_by_policy(ctx, s, doc.residency, preview.dataset_ids)

        preview, withdraw = in_tx(ctx, plan)
        if dry_run:
            _say_preview(preview, dataset)
            _say_withdrawals(withdraw, dry_run=True)
            return
        result = in_tx(
            ctx,
            lambda s: activate(
                s,
                ctx,
                doc,
                actor=cli_actor(),
                dataset_ref=dataset,
                acknowledged_weakening=acknowledge_weakening or (),
            ),
        )
    row = result.version
    state = "new version" if result.created else "existing version"
    say(f"activated {row.name} v{row.version} ({state}, id {row.id})")
    if result.dataset_id:
        say(f"dataset {dataset} now governed by {row.name} v{row.version}")
        for name in result.changed_fields:
            say(f"  changed: {name}")
        say(f"next: privacy-gateway policies reprocess --dataset {dataset}  (dry run)")
    _say_withdrawals(withdraw, dry_run=False)


def _say_preview(preview: Any, dataset: str | None) -> None:
    known = "an existing version" if preview.existing_version_id else "a new version"
    say(f"dry run: would activate {preview.name} as {known} (sha256:{preview.digest[:16]})")
    if dataset:
        say(f"dataset {dataset} would be governed by it")
        for name in preview.changed_fields:
            say(f"  would change: {name}")


def _say_withdrawals(groups: list[Any], *, dry_run: bool) -> None:
    verb = "would withdraw" if dry_run else "withdraws on the next sync or reconcile"
    if not groups:
        say(f"{'would withdraw' if dry_run else 'withdraws'} no Label Studio tasks")
    for group in groups:
        say(f"{verb} {group.describe()}")
        for asset_id, task_id in group.tasks:
            say(f"  task {task_id} (asset {asset_id})")


@policies_app.command("list")
def list_cmd(as_json: JsonFlag = False) -> None:
    """Stored policy versions (activated ones are immutable)."""
    from gateway.policy.versions import list_versions

    with opened() as ctx:
        rows = in_tx(ctx, list_versions)
    if as_json:
        print_json(
            [
                {
                    "id": r.id,
                    "name": r.name,
                    "version": r.version,
                    "sha256": r.digest,
                    "activated_at": r.activated_at.isoformat() if r.activated_at else None,
                }
                for r in rows
            ]
        )
        return
    for r in rows:
        state = f"activated {r.activated_at:%Y-%m-%d %H:%M}" if r.activated_at else "draft"
        say(f"{r.id}  {r.name}@{r.version}  {state}  sha256:{r.digest[:16]}")


@policies_app.command("show")
def show(ref: Annotated[str, typer.Argument(help="NAME@VERSION, NAME or id")]) -> None:
    """Print a stored version as YAML."""
    from gateway.policy.versions import get_version

    with opened() as ctx:
        row = in_tx(ctx, lambda s: get_version(s, ref))
    say(yaml.safe_dump(row.document, sort_keys=False))


@policies_app.command("schema")
def schema(
    output: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
) -> None:
    """The JSON Schema of policy documents (for editors)."""
    from gateway.policy.jsonschema import render_schema

    text = render_schema()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


@policies_app.command("reprocess")
def reprocess(
    dataset: Annotated[str, typer.Option(help="dataset name or id")],
    apply: Annotated[bool, typer.Option("--apply", help="queue them (default: dry run)")] = False,
) -> None:
    """Re-process released assets under the dataset's current policy version (dry run first)."""
    from gateway.policy.reprocess import apply_reprocess, plan_reprocess

    with opened() as ctx:

        def run(session: Any) -> Any:
            plan = plan_reprocess(session, dataset)
            return apply_reprocess(ctx, session, plan, actor=cli_actor()) if apply else plan

        plan = in_tx(ctx, run)
    say(plan.describe())


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list, delete nothing")] = False,
) -> None:
    """Delete what expired under each dataset's policy (idempotent, safe to interrupt)."""
    from gateway.policy.retention import run_retention

    with opened() as ctx:
        report = run_retention(ctx, dry_run=dry_run)
    say(report.describe())
    if report.plan.errors:
        sys.exit(1)


@retention_app.command("hold")
def hold(
    dataset: Annotated[str, typer.Option(help="dataset name or id")],
    reason: Annotated[str, typer.Option(help="why (case reference)")],
    asset: Annotated[str | None, typer.Option(help="only this asset")] = None,
) -> None:
    """Place a legal hold: retention deletes nothing it covers until released."""
    from gateway.policy.holds import place_hold

    with opened() as ctx:
        row = in_tx(
            ctx,
            lambda s: place_hold(
                ctx, s, dataset_ref=dataset, asset_id=asset, reason=reason, actor=cli_actor()
            ),
        )
    say(f"legal hold {row.id} placed")


@retention_app.command("release")
def release(hold_id: Annotated[str, typer.Argument()]) -> None:
    """Release a legal hold."""
    from gateway.policy.holds import release_hold

    with opened() as ctx:
        in_tx(ctx, lambda s: release_hold(ctx, s, hold_id, actor=cli_actor()))
    say(f"legal hold {hold_id} released")


@app.command()
def erase(
    dataset: Annotated[str, typer.Option(help="dataset name or id")],
    subject: Annotated[str | None, typer.Option(help="the data subject's id")] = None,
    asset: Annotated[str | None, typer.Option(help="one asset id")] = None,
) -> None:
    """Carry out an erasure request (GDPR Art. 17); the identifier itself is not recorded."""
    from gateway.policy.erasure import request_erasure

    with opened() as ctx:
        result = in_tx(
            ctx,
            lambda s: request_erasure(
                ctx, s, dataset_ref=dataset, actor=cli_actor(), subject_id=subject, asset_id=asset
            ),
        )
    req = result.request
    say(
        f"erasure {req.id}: {len(result.erased)} asset(s) erased, state {req.state}, "
        f"due {req.due_at:%Y-%m-%d}; {result.pending_recipients} recipient(s) pending"
    )


@erasure_app.command("list")
def erasure_list(
    dataset: Annotated[str | None, typer.Option(help="dataset name or id")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The erasure register: each request, its deadline, state and recipients."""
    from gateway.datasets import get_dataset
    from gateway.policy.erasure import erasure_register, register_view

    with opened() as ctx:
        now = ctx.clock()

        def rows(session: Any) -> list[dict[str, Any]]:
            ds = get_dataset(session, dataset).id if dataset else None
            return [register_view(r, now=now) for r in erasure_register(session, dataset_id=ds)]

        views = in_tx(ctx, rows)
    if as_json:
        print_json(views)
        return
    for v in views:
        late = " OVERDUE" if v["overdue"] else ""
        say(
            f"{v['id']}  {v['scope']:<7} {v['state']:<9} received {v['received_at'][:10]}  "
            f"due {v['due_at'][:10]}{late}  assets {v['assets_erased']}  "
            f"recipients {len(v['recipients'])}"
        )


@erasure_app.command("retry")
def erasure_retry() -> None:
    """Ask the recipients (Label Studio destinations) still pending again (Art. 19)."""
    from gateway.policy.erasure import retry_open_erasures

    with opened() as ctx:
        done = retry_open_erasures(ctx)
    say(f"{len(done)} open erasure request(s) completed")
