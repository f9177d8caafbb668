"""What `fit` learns from is read back from Label Studio, never taken from the webhook.

The ML backend's `/webhook` is authenticated with a Basic-Auth header that every Label Studio
user who opens the project's webhook settings can see, so its body is a hint: the annotation
is read back by id with a Label Studio token (`GATEWAY_ML_LABEL_STUDIO_URL` and
`GATEWAY_ML_LABEL_STUDIO_TOKEN`), its task and project too, and only what Label Studio holds
reaches the calibration. A deletion counts only when Label Studio answers 404. A read-back
proves only that Label Studio holds the annotation: any Label Studio user can create one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from gateway.labelstudio.client import LabelStudioClient, RetryPolicy
from gateway.outbound import AddressPolicy


@dataclass(frozen=True, slots=True)
class HeldTask:
    id: int
    project: int | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class HeldAnnotation:
    """The fields `fit` uses; nothing else of Label Studio's object (it names the annotator)."""

    id: int
    task: int
    project: int | None
    result: list[Any]
    was_cancelled: bool


class AnnotationReader(Protocol):
    """Reads Label Studio's own copy (None: Label Studio holds no such object)."""

    def annotation(self, annotation_id: int) -> HeldAnnotation | None: ...

    def task(self, task_id: int) -> HeldTask | None: ...

    def label_config(self, project_id: int) -> str | None: ...

    def close(self) -> None: ...


class LabelStudioReader:
    """The real reader: Label Studio's API through label-studio-sdk, with retries."""

    def __init__(
        self, url: str, token: str, *, policy: AddressPolicy, timeout: float = 10.0
    ) -> None:
        self._client = LabelStudioClient(
            url,
            token,
            policy=policy,
            retry=RetryPolicy(attempts=3, first_delay=0.2),
            timeout=timeout,
        )

    def annotation(self, annotation_id: int) -> HeldAnnotation | None:
        raw = self._client.annotation(annotation_id)
        if raw is None or not isinstance(raw.get("task"), int):
            return None
        result = raw.get("result")
        return HeldAnnotation(
            id=annotation_id,
            task=raw["task"],
            project=raw.get("project") if isinstance(raw.get("project"), int) else None,
            result=result if isinstance(result, list) else [],
            was_cancelled=bool(raw.get("was_cancelled")),
        )

    def task(self, task_id: int) -> HeldTask | None:
        task = self._client.task(task_id)
        if task is None:
            return None
        return HeldTask(id=task.id, project=task.project, data=task.data)

    def label_config(self, project_id: int) -> str | None:
        return self._client.label_config(project_id)

    def close(self) -> None:
        self._client.close()
