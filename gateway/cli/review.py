"""`privacy-gateway review ...`: human review of redaction in Label Studio."""

# deferred imports: a command imports what it runs inside its function, so that `--help`
# and every other command start without loading the service, the ORM or the models.
from __future__ import annotations

import sys
from typing import Annotated

import typer

from gateway.cli.common import JsonFlag, cli_actor, err, in_tx, opened, out, print_json

app = typer.Typer()  # merged into the root app by gateway.cli.root
review_app = typer.Typer(no_args_is_help=True, help="Human review of redaction (admin).")
app.add_typer(review_app, name="review")
reviewers_app = typer.Typer(no_args_is_help=True, help="Who may decide a dataset's reviews.")
review_app.add_typer(reviewers_app, name="reviewers")
Dataset = Annotated[str, typer.Argument(help="dataset name or id")]


@review_app.command("setup")
def setup(
    dataset: Dataset,
    destination: Annotated[str, typer.Option(help="destination that holds the review project")],
) -> None:
    """Name the destination that holds the dataset's review project."""
    from gateway.review.project import set_review_destination

    with opened() as ctx:
        row = in_tx(
            ctx, lambda s: set_review_destination(ctx, s, dataset, destination, actor=cli_actor())
        )
    out.print(f"reviews of {dataset} go to destination {row.destination_id}")


@reviewers_app.command("add")
def reviewers_add(
    dataset: Dataset,
    labelstudio_user: Annotated[int, typer.Option(help="the reviewer's Label Studio user id")],
) -> None:
    """Allow a Label Studio user of the review destination to decide this dataset's reviews."""
    from gateway.review.project import add_reviewer

    with opened() as ctx:
        row = in_tx(
            ctx, lambda s: add_reviewer(ctx, s, dataset, user=labelstudio_user, actor=cli_actor())
        )
    out.print(f"reviewer {row.pseudonym} may decide reviews of {dataset}")


@reviewers_app.command("remove")
def reviewers_remove(
    dataset: Dataset, pseudonym: Annotated[str, typer.Argument(help="as `add` printed it")]
) -> None:
    """Stop a reviewer's decisions from counting (later ones are recorded and ignored)."""
    from gateway.review.project import remove_reviewer

    with opened() as ctx:
        in_tx(
            ctx,
            lambda s: remove_reviewer(ctx, s, dataset, pseudonym_=pseudonym, actor=cli_actor()),
        )
    out.print(f"reviewer {pseudonym} no longer decides reviews of {dataset}", highlight=False)


@review_app.command("queue")
def queue(
    dataset: Dataset,
    sample: Annotated[
        bool, typer.Option(help="draw this batch's sample of released assets")
    ] = True,
    rate: Annotated[
        str | None, typer.Option(help="override the policy's review.sample_rate")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Queue quarantined and flagged assets and a seeded sample of released ones, and create
    their tasks in the review project."""
    from dataclasses import asdict

    from gateway.datasets import get_dataset
    from gateway.review.project import push_review_tasks
    from gateway.review.queue import enqueue_for_review

    with opened() as ctx:
        dataset_id = in_tx(ctx, lambda s: get_dataset(s, dataset).id)
        queued = in_tx(
            ctx,
            lambda s: enqueue_for_review(
                ctx, s, dataset_id, actor=cli_actor(), sample=sample, rate=rate
            ),
        )
        pushed = push_review_tasks(ctx, dataset_id, actor=cli_actor())
    if as_json:
        print_json(
            asdict(queued) | {"tasks_created": len(pushed.created), "project_id": pushed.project_id}
        )
        return
    out.print(
        f"queued {len(queued.quarantined)} quarantined, {len(queued.flagged)} flagged, "
        f"{len(queued.sampled)} sampled (sample {queued.sample_id}); "
        f"{len(pushed.created)} tasks created in review project {pushed.project_id}",
        highlight=False,
    )


@review_app.command("pull")
def pull(dataset: Dataset) -> None:
    """Read reviewers' decisions back from Label Studio and act on them (re-render, release,
    reject, re-process); decisions by anyone not on the reviewer list are recorded, ignored."""
    from gateway.redactor import IsolatedRedactor
    from gateway.review.decide import pull_decisions

    with opened() as ctx:
        redactor = IsolatedRedactor(ctx.settings)
        try:
            report = pull_decisions(ctx, dataset, redactor=redactor, actor=cli_actor())
        finally:
            redactor.close()
    for item_id, decision in sorted(report.decided.items()):
        out.print(f"decided {item_id}: {decision}", highlight=False)
    for item_id, why in sorted(report.refused.items()):
        err.print(f"not applied {item_id}: {why}", highlight=False)
    out.print(
        f"{len(report.decided)} decided, {len(report.ignored)} ignored (not a reviewer), "
        f"{len(report.refused)} not applied",
        highlight=False,
    )


@review_app.command("verify-sample")
def verify_sample_command(sample_id: Annotated[str, typer.Argument()]) -> None:
    """Recompute a review sample from the signed checkpoint that seeded it."""
    from gateway.review.queue import verify_sample

    with opened() as ctx:
        check = in_tx(ctx, lambda s: verify_sample(ctx, s, sample_id))
    out.print(
        f"sample {check.sample_id}: seed {check.seed} from checkpoint {check.checkpoint_tree_size}"
        f" draws {len(check.drawn)} asset(s): "
        + ("matches the recorded draw" if check.matches else "DOES NOT match the recorded draw"),
        highlight=False,
    )
    if not check.matches:
        sys.exit(6)


@review_app.command("calibrate")
def calibrate(
    dataset: Dataset,
    seed: Annotated[int, typer.Option(help="draws which labelled faces stay visible (recorded)")],
) -> None:
    """Queue the calibration batch (bundled public photos, some labelled faces left visible on
    purpose) to measure reviewer recall, and create its tasks in the review project."""
    from gateway.review.calibration import open_calibration
    from gateway.review.project import push_review_tasks

    with opened() as ctx:
        queued = open_calibration(ctx, dataset, seed=seed, actor=cli_actor())
        pushed = push_review_tasks(ctx, dataset, actor=cli_actor())
    out.print(
        f"queued {len(queued)} calibration item(s) (seed {seed}); "
        f"{len(pushed.created)} tasks created in review project {pushed.project_id}",
        highlight=False,
    )
