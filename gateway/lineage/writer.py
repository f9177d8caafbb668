"""A lineage writer bound to the caller's transaction and context: call sites name only what
differs (the action, the entity, the payload), and each action's payload is checked against
its shape before anything is written.

    recorder(ctx, session, actor).record(Action.ASSET_RELEASED, entity=asset.id, ...)

Underneath it is `ledger.append`: the record's bytes are exactly what a hand-written call with
the same values wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from gateway.core.errors import GatewayError
from gateway.lineage.actions import SHAPES, Action
from gateway.lineage.ledger import Actor, PendingRecord, append

if TYPE_CHECKING:
    from gateway.core.context import GatewayContext


class LineagePayloadError(GatewayError):
    """A record does not carry what its action promises (a missing payload key, an entity
    type the action does not describe, or a name that is not an `Action`): a bug at the call
    site, refused before anything is written."""

    code, status, title = "lineage-payload-shape", 500, "Lineage record does not fit its action"


@dataclass(frozen=True, slots=True)
class Recorder:
    """Writes records into `session`'s transaction for `actor`, stamped by `clock` and
    `region` (the region of the process that made the change)."""

    session: Session
    actor: Actor
    region: str
    clock: Callable[[], datetime]

    def by(self, actor: Actor) -> Recorder:
        """The same writer for another actor."""
        return replace(self, actor=actor)

    def record(
        self,
        action: Action,
        *,
        entity: str,
        entity_type: str | None = None,
        dataset: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        outputs: Mapping[str, Any] | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> PendingRecord:
        """Append one record of `action` about `entity` (of the action's entity type unless
        the action leaves it to the caller) in the bound transaction."""
        kind = _entity_type(action, entity_type)
        _check_payload(action, inputs=inputs, outputs=outputs, parameters=parameters)
        return append(
            self.session,
            action=action.value,
            entity_type=kind,
            entity_id=entity,
            dataset_id=dataset,
            actor=self.actor,
            now=self.clock(),
            region=self.region,
            inputs=dict(inputs) if inputs is not None else None,
            outputs=dict(outputs) if outputs is not None else None,
            parameters=dict(parameters) if parameters is not None else None,
        )


def recorder(
    ctx: GatewayContext, session: Session, actor: Actor, *, now: datetime | None = None
) -> Recorder:
    """A writer for `ctx`'s clock and region; `now` pins the time (a call site that stamps its
    rows with one instant stamps its record with the same)."""
    return Recorder(session, actor, ctx.settings.region, ctx.clock if now is None else _at(now))


def recorder_at(session: Session, *, actor: Actor, region: str, now: datetime) -> Recorder:
    """A writer for code that is handed the instant and region rather than a context."""
    return Recorder(session, actor, region, _at(now))


def _at(now: datetime) -> Callable[[], datetime]:
    return lambda: now


def _entity_type(action: Action, given: str | None) -> str:
    if not isinstance(action, Action):
        raise LineagePayloadError(f"{action!r} is not a lineage Action", action=str(action))
    fixed = SHAPES[action].entity
    if fixed is None and given is None:
        raise LineagePayloadError(f"{action.value} needs its entity type named", action=action)
    if fixed is not None and given not in (None, fixed):
        raise LineagePayloadError(
            f"{action.value} describes a {fixed}, not a {given}", action=action, entity=given
        )
    return fixed or str(given)


def _check_payload(
    action: Action,
    *,
    inputs: Mapping[str, Any] | None,
    outputs: Mapping[str, Any] | None,
    parameters: Mapping[str, Any] | None,
) -> None:
    shape = SHAPES[action]
    given = {"inputs": inputs or {}, "outputs": outputs or {}, "parameters": parameters or {}}
    for section, required in (
        ("inputs", shape.inputs),
        ("outputs", shape.outputs),
        ("parameters", shape.parameters),
    ):
        missing = [key for key in required if key not in given[section]]
        if missing:
            raise LineagePayloadError(
                f"a {action.value} record needs {section} {', '.join(missing)}",
                action=action.value,
                section=section,
                missing=missing,
            )
