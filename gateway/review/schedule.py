"""The service's scheduled review pull: every `review_pull_interval_seconds` a supervised loop
reads reviewers' decisions back from Label Studio for every dataset with a review project and
acts on them (`review pull`), with its own redactor (one isolated redaction process, made on
first use). One dataset that fails does not stop the others; the next tick tries again."""

from __future__ import annotations

import logging

from sqlmodel import select

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import GatewayError
from gateway.lineage import Actor
from gateway.redaction_step import OwnRedactor, RedactorFactory
from gateway.review.decide import ReviewPull, pull_decisions
from gateway.review.models import ReviewProject
from gateway.review.project import REVIEW_PULL_LOOP

log = logging.getLogger(__name__)
REVIEW_PULL = Actor("system", "review-pull")


def pull_now(
    ctx: GatewayContext, dataset_id: str, *, actor: Actor, redactor_factory: RedactorFactory
) -> ReviewPull:
    """One review pull of one dataset, now (the API's trigger; the loop below otherwise).
    A pull running at the same time is safe: each decision is claimed once (decide._claim)."""
    redactor = OwnRedactor(redactor_factory)  # a pull with nothing to re-render starts none
    try:
        return pull_decisions(ctx, dataset_id, redactor=redactor, actor=actor)
    finally:
        redactor.close()


class ReviewPuller:
    name = REVIEW_PULL_LOOP
    first_after_interval = True
    wakeable = False
    critical = False

    def __init__(
        self, ctx: GatewayContext, *, interval_seconds: float, redactor_factory: RedactorFactory
    ) -> None:
        self.ctx, self.interval = ctx, interval_seconds
        self._redactor = OwnRedactor(redactor_factory)

    def tick(self) -> bool:
        self.run_once()
        return False

    def run_once(self) -> dict[str, ReviewPull]:
        done: dict[str, ReviewPull] = {}
        for dataset_id in review_datasets(self.ctx):
            try:
                done[dataset_id] = pull_decisions(
                    self.ctx, dataset_id, redactor=self._redactor.current(), actor=REVIEW_PULL
                )
            except GatewayError as exc:
                log.warning("review pull of %s failed: %s", dataset_id, exc.code)
        return done

    def able(self) -> bool:
        return True

    def close(self) -> None:
        self._redactor.close()


def review_datasets(ctx: GatewayContext) -> list[str]:
    """The datasets whose review project exists in Label Studio."""
    with transaction(ctx.engine) as session:
        return list(
            session.exec(
                select(ReviewProject.dataset_id).where(
                    ReviewProject.project_id.is_not(None)  # type: ignore[union-attr]
                )
            ).all()
        )
