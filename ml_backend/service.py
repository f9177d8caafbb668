"""The pre-labeller: Label Studio's `setup`, `predict` and `fit`, as plain methods.

The FastAPI app only translates HTTP to these calls. Models are loaded before this object is
built (`loading.load_sources`), never on a request; `setup` only parses the project's config.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.lineage.actions import Action
from ml_backend.assist import BadContext, assist_results, parse_seed
from ml_backend.calibration import CalibrationStore, evidence_for, project_key
from ml_backend.detections import Detection
from ml_backend.images import ImageRefused, ImageSource, RedactedImage
from ml_backend.labelconfig import ControlKind, ProjectSchema, UnsupportedConfig, parse_label_config
from ml_backend.mapping import LabelMapping
from ml_backend.masks import with_outlines
from ml_backend.readback import AnnotationReader
from ml_backend.results import ImageFrame, Labelled, build_prediction, label_detections
from ml_backend.sources.base import SourceSet

log = logging.getLogger(__name__)
MODEL_CLASS = "PrivacyGatewayPreLabeller"
TRAIN_EVENTS = frozenset(
    {"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED", "START_TRAINING"}
)
_REGION_TYPES = ("rectanglelabels", "polygonlabels")

TaskResult = list[dict[str, Any]]
"""What Label Studio gets per task: [] (no prediction) or [prediction]."""


@dataclass
class PreLabeller:
    sources: SourceSet
    images: ImageSource
    mapping: LabelMapping
    calibration: CalibrationStore
    budget_seconds: float
    clock: Callable[[], float] = time.monotonic
    annotations: AnnotationReader | None = None  # Label Studio's own copy, for `fit`

    # ------------------------------------------------------------------ versions and setup
    @property
    def base_version(self) -> str:
        return f"lpg-prelabel-{self.sources.version()}"

    def model_version(self, project: str | None) -> str:
        if project is None:
            return self.base_version
        revision = self.calibration.load(project).revision
        return self.base_version if revision == 0 else f"{self.base_version}.p{project}.c{revision}"

    def setup(self, *, project: object, label_config: str | None) -> str:
        """The model version for this project; a config we cannot serve is logged, not fatal."""
        key = project_key(project)
        schema_or_reason(label_config or "", project=key)
        return self.model_version(key)

    # ------------------------------------------------------------------ predict
    def predict(
        self,
        tasks: Sequence[Mapping[str, Any]],
        *,
        project: object,
        label_config: str,
        context: Mapping[str, Any] | None,
    ) -> list[TaskResult]:
        key = project_key(project)
        schema = schema_or_reason(label_config, project=key)
        if schema is None:
            return [[] for _ in tasks]
        version = self.model_version(key)
        if context and context.get("result"):
            return self._interactive(tasks, schema, dict(context), version=version, project=key)
        deadline = self.clock() + self.budget_seconds
        out: list[TaskResult] = []
        for task in tasks:
            if self.clock() > deadline:
                log.warning("predict budget spent: task %s gets no prediction", _task_id(task))
                out.append([])
                continue
            out.append(self._predict_one(task, schema, version=version, project=key))
        return out

    def _predict_one(
        self, task: Mapping[str, Any], schema: ProjectSchema, *, version: str, project: str | None
    ) -> TaskResult:
        image = self._image(task)
        if image is None:
            return []
        detections, failed = self._detect(image)
        if schema.of_kind(ControlKind.POLYGON, ControlKind.BRUSH):
            detections = with_outlines(
                image.pixels,
                detections,
                wanted=lambda d: d.score >= self.sources.threshold_of(d),
            )
        labelled = label_detections(detections, schema=schema, mapping=self.mapping)
        calibration = self.calibration.load(project) if project else None

        def threshold(item: Labelled) -> float:
            learnt = calibration.threshold(item.label) if calibration else None
            return learnt if learnt is not None else self.sources.threshold_of(item.detection)

        prediction = build_prediction(
            labelled,
            frame=ImageFrame(image.width, image.height),
            threshold=threshold,
            model_version=version,
        )
        labels = Counter(_result_labels(prediction["result"]))
        self.images.record(
            image,
            action=Action.ML_PREDICTED,
            outputs={"results": len(prediction["result"]), "labels": dict(labels)},
            parameters={
                "model_version": version,
                "project": project or "",
                "sources": sorted(s.name for s in self.sources.sources),
                "failed_sources": failed,
                "score_milli": round(prediction["score"] * 1000),
            },
        )
        return [prediction]

    def _interactive(
        self,
        tasks: Sequence[Mapping[str, Any]],
        schema: ProjectSchema,
        context: dict[str, Any],
        *,
        version: str,
        project: str | None,
    ) -> list[TaskResult]:
        if not tasks:
            return []
        empty = {"result": [], "score": 0.0, "model_version": version}
        image = self._image(tasks[0])
        if image is None:
            return [[empty]]
        try:
            seed = parse_seed(context, width=image.width, height=image.height)
        except BadContext as exc:
            log.info("interactive context ignored: %s", exc)
            return [[empty]]
        results = assist_results(image.pixels, seed, schema=schema) if seed else []
        score = min((r["score"] for r in results), default=0.0)
        self.images.record(
            image,
            action=Action.ML_ASSISTED,
            outputs={"results": len(results)},
            parameters={"model_version": version, "project": project or "", "tool": "grabcut"},
        )
        return [[{"result": results, "score": score, "model_version": version}]]

    def _image(self, task: Mapping[str, Any]) -> RedactedImage | None:
        data = task.get("data")
        if not isinstance(data, Mapping):
            log.info("task %s has no data object: no prediction", _task_id(task))
            return None
        try:
            return self.images.fetch(data)
        except ImageRefused as exc:  # a refusal is an operator's business: warn, with the reason
            log.warning("task %s gets no prediction: %s: %s", _task_id(task), exc.code, exc.message)
            return None

    def _detect(self, image: RedactedImage) -> tuple[list[Detection], list[str]]:
        found: list[Detection] = []
        failed: list[str] = []
        for source in self.sources.sources:
            try:
                found.extend(source.detect(image.pixels))
            except Exception:  # one broken source must not take the others' pre-labels down
                log.exception("pre-label source %s failed on an image", source.name)
                failed.append(source.name)
        return found, failed

    # ------------------------------------------------------------------ fit
    def fit(self, event: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Update the project's calibration from one annotation event, read back first:
        the webhook only names the annotation; what is learnt is what Label Studio holds."""
        project_info = payload.get("project")
        key = project_key(project_info.get("id")) if isinstance(project_info, Mapping) else None
        if key is None:
            raise ValueError("the webhook payload names no Label Studio project id")
        if event == "START_TRAINING":
            return {"model_version": self.model_version(key)}
        reader = self.annotations
        if reader is None:
            log.warning(
                "fit learns nothing: no Label Studio URL and token to read annotations back"
            )
            return {"model_version": self.model_version(key), "calibrated": False}
        if event == "ANNOTATIONS_DELETED":
            ignored = 0
            for ann in payload.get("annotations") or []:
                ann_id = ann.get("id") if isinstance(ann, Mapping) else None
                if not isinstance(ann_id, int) or isinstance(ann_id, bool):
                    continue
                if reader.annotation(ann_id) is None:  # Label Studio confirms: 404
                    self.calibration.update(key, str(ann_id), None)
                else:
                    ignored += 1  # still held by Label Studio: the deletion is not true
            return {"model_version": self.model_version(key), "ignored": ignored}
        return self._fit_annotation(payload, project=key, reader=reader)

    def _fit_annotation(
        self, payload: Mapping[str, Any], *, project: str, reader: AnnotationReader
    ) -> dict[str, Any]:
        annotation = payload.get("annotation")
        ann_id = annotation.get("id") if isinstance(annotation, Mapping) else None
        if not isinstance(ann_id, int) or isinstance(ann_id, bool):
            raise ValueError("an annotation event needs an `annotation` object with an id")
        not_learnt = {"model_version": self.model_version(project), "calibrated": False}
        held = reader.annotation(ann_id)
        task = reader.task(held.task) if held is not None else None
        if held is None or task is None or str(held.project or task.project) != project:
            log.info(
                "annotation %s is not Label Studio's in project %s: not learnt", ann_id, project
            )
            return not_learnt | {"reason": "not-confirmed-by-label-studio"}
        schema = schema_or_reason(reader.label_config(int(project)) or "", project=project)
        image = self._image({"id": task.id, "data": task.data})
        if schema is None or image is None:
            return not_learnt
        if held.was_cancelled:
            calibration, changed = self.calibration.update(project, str(ann_id), None)
        else:
            detections, _ = self._detect(image)
            labelled = label_detections(detections, schema=schema, mapping=self.mapping)
            annotated = annotated_boxes(held.result, image=image)
            evidence = evidence_for(labelled, annotated)
            calibration, changed = self.calibration.update(project, str(ann_id), evidence)
        version = self.model_version(project)
        self.images.record(
            image,
            action=Action.ML_CALIBRATED,
            outputs={
                "revision": calibration.revision,
                "thresholds_milli": calibration.thresholds_milli,
            },
            parameters={"project": project, "model_version": version, "changed": str(changed)},
        )
        return {"model_version": version, "calibrated": True, "changed": changed}


def schema_or_reason(label_config: str, *, project: str | None) -> ProjectSchema | None:
    try:
        return parse_label_config(label_config)
    except UnsupportedConfig as exc:
        log.warning("project %s: no predictions for this labelling config: %s", project, exc)
        return None


def annotated_boxes(
    results: object, *, image: RedactedImage
) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Rectangles and polygons (as their bounding boxes) in pixels, with their first label."""
    boxes = []
    for r in results if isinstance(results, list) else []:
        if not isinstance(r, Mapping) or r.get("type") not in _REGION_TYPES:
            continue
        value = r.get("value")
        if not isinstance(value, Mapping):
            continue
        labels = value.get(str(r["type"]))
        if not isinstance(labels, list) or not labels:
            continue
        sx, sy = image.width / 100, image.height / 100
        try:
            if r["type"] == "rectanglelabels":
                box = (value["x"] * sx, value["y"] * sy, value["width"] * sx, value["height"] * sy)
            else:
                xs = [p[0] * sx for p in value["points"]]
                ys = [p[1] * sy for p in value["points"]]
                box = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
        except (KeyError, TypeError, IndexError):
            continue
        boxes.append((str(labels[0]), tuple(float(v) for v in box)))
    return boxes  # type: ignore[return-value]


def _result_labels(results: list[dict[str, Any]]) -> list[str]:
    labels: list[str] = []
    for r in results:
        values = r["value"].get(r["type"], [])
        labels.extend(str(v) for v in values)
    return labels


def _task_id(task: Mapping[str, Any]) -> str:
    tid = task.get("id")
    return str(tid) if isinstance(tid, int) else "?"
