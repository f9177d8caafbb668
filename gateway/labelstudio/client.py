"""A thin adapter over `label-studio-sdk` (2.x): only the calls the sync needs, with retries.

Transient failures (connection errors, timeouts, 429, 5xx) are retried with exponential
backoff; everything else is a `LabelStudioRejected` at once. The token never appears in an
error message or a log line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import httpx
import pydantic
from label_studio_sdk.client import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from gateway.core.clearance import Clearance, ClearanceMismatch, EnforcementPoint
from gateway.labelstudio.errors import LabelStudioRejected, LabelStudioUnavailable
from gateway.labelstudio.task_model import TaskField, claimed
from gateway.outbound import AddressPolicy, guarded_client

T = TypeVar("T")
WEBHOOK_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED")
WEBHOOK_SECRET_HEADER = "X-Gateway-Webhook-Secret"  # noqa: S105  (a header name)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    first_delay: float = 0.5
    factor: float = 2.0
    sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True, slots=True)
class RemoteTask:
    id: int
    data: dict[str, Any]
    annotations: list[dict[str, Any]]
    project: int | None = None


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    status = _status(exc) or 0
    return status == 429 or status >= 500


class LabelStudioClient:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        policy: AddressPolicy,
        retry: RetryPolicy | None = None,
        timeout: float = 15.0,
        region: str | None = None,
    ) -> None:
        """`policy` says which addresses the URL may reach, checked at every connection
        (`gateway.outbound`): the token never leaves for a refused address. `region` is where
        the server keeps what it is sent: task imports need a sync clearance for it."""
        self.url = url.rstrip("/")
        self.region = region
        self._http = guarded_client(policy, timeout=timeout)
        self._sdk = LabelStudio(  # type: ignore[no-untyped-call]
            base_url=self.url, api_key=token, httpx_client=self._http, max_retries=0
        )
        self._retry = retry or RetryPolicy()

    def close(self) -> None:
        self._http.close()

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one request with retries; raise typed errors that name `what`, never the token."""
        delay = self._retry.first_delay
        for attempt in range(1, self._retry.attempts + 1):
            try:
                return fn()
            except (ApiError, httpx.HTTPError) as exc:
                if not is_transient(exc):
                    raise LabelStudioRejected(
                        f"Label Studio refused to {what}", status=_status(exc), url=self.url
                    ) from None
                if attempt == self._retry.attempts:
                    raise LabelStudioUnavailable(
                        f"Label Studio did not answer to {what} after {attempt} attempts",
                        status=_status(exc),
                        url=self.url,
                    ) from None
                self._retry.sleep(delay)
                delay *= self._retry.factor
        raise AssertionError("unreachable")

    def health(self) -> bool:
        def get() -> bool:
            response = self._http.get(f"{self.url}/health")
            response.raise_for_status()
            return True

        return self.call("answer /health", get)

    def whoami(self) -> int:
        """The id of the token's user: proves the token works."""
        user = self.call("check the access token", self._sdk.users.whoami)
        return int(user.id)

    def create_project(
        self, *, title: str, description: str, label_config: str, instructions: str
    ) -> int:
        project = self.call(
            "create a project",
            lambda: self._sdk.projects.create(
                title=title,
                description=description,
                label_config=label_config,
                expert_instruction=instructions,
                show_instruction=bool(instructions),
            ),
        )
        return int(project.id or 0)

    def find_project(self, marker: str) -> int | None:
        """A project whose description carries `marker` (adopted after a crash)."""
        projects: list[dict[str, Any]] = self.call(
            "list projects",
            lambda: _dump(self._sdk.projects.list(page_size=100)),
        )
        for project in projects:
            if marker in (project.get("description") or ""):
                return int(project["id"])
        return None

    def label_config(self, project_id: int) -> str | None:
        """The project's labelling configuration (None: no such project)."""
        try:
            project = self.call("read a project", lambda: self._sdk.projects.get(project_id))
        except LabelStudioRejected as exc:
            if exc.details.get("status") == 404:
                return None
            raise
        return project.label_config

    def project_exists(self, project_id: int) -> bool:
        try:
            self.call("read a project", lambda: self._sdk.projects.get(project_id))
        except LabelStudioRejected as exc:
            if exc.details.get("status") == 404:
                return False
            raise
        return True

    def set_label_config(self, project_id: int, *, label_config: str, instructions: str) -> None:
        self.call(
            "update the labelling configuration",
            lambda: self._sdk.projects.update(
                project_id,
                label_config=label_config,
                expert_instruction=instructions,
                show_instruction=bool(instructions),
            ),
        )

    def create_webhook(self, project_id: int, *, url: str, secret: str) -> int:
        hook = self.call(
            "register the annotation webhook",
            lambda: self._sdk.webhooks.create(
                url=url,
                project=project_id,
                headers={WEBHOOK_SECRET_HEADER: secret},
                send_payload=True,
                send_for_all_actions=False,
                actions=list(WEBHOOK_ACTIONS),
                is_active=True,
            ),
        )
        return int(hook.id or 0)

    def view_titles(self, project_id: int) -> list[str]:
        """The titles of the project's Data Manager tabs."""
        views = self.call(
            "list the project's task views", lambda: self._sdk.views.list(project=project_id)
        )
        return [str((v.data or {}).get("title", "")) for v in views]

    def create_view(self, project_id: int, *, title: str, hidden_columns: list[str]) -> None:
        """A Data Manager tab with these task columns hidden (in the list and beside the
        editor); columns are Label Studio ids such as `tasks:data.meta`."""
        hidden = {"explore": hidden_columns, "labeling": hidden_columns}
        self.call(
            "create the annotators' task view",
            lambda: self._sdk.views.create(
                project=project_id,
                data={"title": title, "hiddenColumns": hidden},
            ),
        )

    def local_storage_paths(self, project_id: int) -> list[str]:
        """The paths of the project's local-files storage connections."""
        found = self.call(
            "list local-files storages",
            lambda: self._sdk.import_storage.local.list(project=project_id),
        )
        return [s.path for s in found if s.path]

    def create_local_storage(self, project_id: int, *, path: str, title: str) -> int:
        """Connect a local-files storage (never synced: the gateway imports the tasks)."""
        storage = self.call(
            "connect a local-files storage",
            lambda: self._sdk.import_storage.local.create(
                project=project_id, path=path, title=title, use_blob_urls=True
            ),
        )
        return int(storage.id or 0)

    def import_tasks(
        self, project_id: int, tasks: list[dict[str, Any]], *, clearance: Clearance
    ) -> list[int]:
        """Import in one request; the new task ids, in the order of `tasks`. Only under a sync
        clearance for this server's region and for every dataset a task names."""
        if self.region is None:
            raise ClearanceMismatch(
                "this Label Studio client names no region; no task is sent", rule="sync.no-region"
            )
        clearance.require(
            EnforcementPoint.SYNC, dataset_id=clearance.dataset_id, region=self.region
        )
        for task in tasks:
            named = claimed(task.get("data"), TaskField.DATASET_ID)
            dataset_id = clearance.dataset_id if named is None else str(named)
            clearance.require(EnforcementPoint.SYNC, dataset_id=dataset_id, region=self.region)
        response = self.call(
            "import tasks",
            lambda: self._sdk.projects.import_tasks(
                project_id,
                request=cast(Any, tasks),
                return_task_ids=True,
            ),
        )
        ids = (response.model_extra or {}).get("task_ids") or getattr(response, "task_ids", None)
        if not isinstance(ids, list) or len(ids) != len(tasks):
            raise LabelStudioRejected(
                "Label Studio's import answer does not list one task id per task",
                expected=len(tasks),
            )
        return [int(i) for i in ids]

    def tasks(self, project_id: int) -> Iterator[RemoteTask]:
        listed: list[dict[str, Any]] = self.call(
            "list tasks",
            lambda: _dump(self._sdk.tasks.list(project=project_id, fields="all", page_size=100)),
        )
        for raw in listed:
            yield RemoteTask(
                id=int(raw["id"]),
                data=raw.get("data") or {},
                annotations=raw.get("annotations") or [],
            )

    def task(self, task_id: int) -> RemoteTask | None:
        try:
            task = self.call("read a task", lambda: self._sdk.tasks.get(str(task_id)))
        except LabelStudioRejected as exc:
            if exc.details.get("status") == 404:
                return None
            raise
        raw = task.model_dump(mode="json")
        project = raw.get("project")
        return RemoteTask(
            int(raw["id"]),
            raw.get("data") or {},
            raw.get("annotations") or [],
            project if isinstance(project, int) else None,
        )

    def annotation(self, annotation_id: int) -> dict[str, Any] | None:
        """The annotation as Label Studio holds it now (None: Label Studio has no such
        annotation). The caller keeps only what it needs: the object names the annotator."""
        try:
            found = self.call(
                "read an annotation", lambda: self._sdk.annotations.get(annotation_id)
            )
        except LabelStudioRejected as exc:
            if exc.details.get("status") == 404:
                return None
            raise
        except pydantic.ValidationError:
            raise LabelStudioRejected(
                "Label Studio's annotation does not have the shape its API documents",
                annotation=annotation_id,
            ) from None
        raw: dict[str, Any] = found.model_dump(mode="json")
        return raw

    def update_task_data(self, task_id: int, data: dict[str, Any]) -> bool:
        """Replace a task's data in place (its annotations stay); False if the task is gone."""
        try:
            self.call(
                "update a task's data", lambda: self._sdk.tasks.update(str(task_id), data=data)
            )
        except LabelStudioRejected as exc:
            if exc.details.get("status") == 404:
                return False
            raise
        return True

    def delete_task(self, task_id: int) -> None:
        """Delete a task (Label Studio deletes its annotations and predictions with it)."""
        try:
            self.call("delete a task", lambda: self._sdk.tasks.delete(str(task_id)))
        except LabelStudioRejected as exc:
            if exc.details.get("status") != 404:
                raise


def _dump(items: Iterable[Any]) -> list[dict[str, Any]]:
    return [item.model_dump(mode="json") for item in items]


def _status(exc: BaseException) -> int | None:
    if isinstance(exc, ApiError):
        return exc.status_code
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code
    return None
