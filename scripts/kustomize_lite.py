"""Render a kustomization offline: the subset of kustomize that deploy/k8s uses.

`kubectl kustomize` (or `kustomize build`) is the real tool; this machine and CI have no
guarantee of either, so the tests render deploy/k8s with this small equivalent and, when a
`kubectl` binary is present, check that both give the same objects.

Supported (and nothing else: any other field is an error, never silently ignored):
  resources   files (one or many YAML documents) and folders holding a kustomization.yaml
  namespace   set on every namespaced object (not on Namespace itself)
  labels      pairs, added to metadata.labels; includeTemplates adds them to pod templates
              (includeSelectors is refused: selectors are written out in full)
  images      name -> newName / newTag, on containers and initContainers
  patches     JSON 6902 patches (path: file of operations) with a target kind/name

    python scripts/kustomize_lite.py deploy/k8s/overlays/eu-us
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]
SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class KustomizeError(ValueError):
    """The kustomization uses something this renderer does not do, or is wrong."""


def build(folder: Path) -> list[Obj]:
    """The objects a kustomization folder renders to, in resource order."""
    path = folder / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{folder}: no kustomization.yaml")
    spec: Obj = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise KustomizeError(f"{path}: unsupported fields {sorted(unknown)}")
    objects: list[Obj] = []
    for entry in spec.get("resources", []):
        objects += _load(folder / entry)
    _check_unique(objects, path)
    for patch in spec.get("patches", []):
        _apply_patch(objects, patch, folder)
    for image in spec.get("images", []):
        _set_image(objects, image)
    for label in spec.get("labels", []):
        _add_labels(objects, label)
    if "namespace" in spec:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = spec["namespace"]
    return objects


def _load(target: Path) -> list[Obj]:
    if target.is_dir():
        return build(target)
    if not target.is_file():
        raise KustomizeError(f"resource {target} does not exist")
    docs = yaml.safe_load_all(target.read_text(encoding="utf-8"))
    return [copy.deepcopy(d) for d in docs if d]


def _key(obj: Obj) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def _check_unique(objects: list[Obj], where: Path) -> None:
    seen: set[tuple[str, str]] = set()
    for obj in objects:
        if _key(obj) in seen:
            raise KustomizeError(f"{where}: {_key(obj)} defined twice")
        seen.add(_key(obj))


def _apply_patch(objects: list[Obj], patch: Obj, folder: Path) -> None:
    target = patch.get("target") or {}
    if set(patch) - {"path", "target"} or not {"kind", "name"} <= target.keys():
        raise KustomizeError(f"patch {patch}: only path + target kind/name are supported")
    matches = [o for o in objects if _key(o) == (target["kind"], target["name"])]
    if len(matches) != 1:
        raise KustomizeError(f"patch target {target} matches {len(matches)} objects")
    operations = yaml.safe_load((folder / patch["path"]).read_text(encoding="utf-8"))
    for operation in operations:
        json_patch(matches[0], operation)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def json_patch(doc: Obj, operation: Obj) -> None:
    """Apply one RFC 6902 add / replace / remove operation in place."""
    op, parts = operation["op"], _pointer(operation["path"])
    parent: Any = doc
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    value = copy.deepcopy(operation.get("value"))
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if op == "add":
            parent.insert(index, value)
        elif op == "replace":
            parent[index] = value
        elif op == "remove":
            del parent[index]
        else:
            raise KustomizeError(f"unsupported op {op}")
    elif op in {"add", "replace"}:
        if op == "replace" and last not in parent:
            raise KustomizeError(f"replace of missing {operation['path']}")
        parent[last] = value
    elif op == "remove":
        del parent[last]
    else:
        raise KustomizeError(f"unsupported op {op}")


def _pod_spec(obj: Obj) -> Obj | None:
    if obj["kind"] not in WORKLOADS:
        return None
    spec: Obj = obj["spec"]["template"]["spec"]
    return spec


def _set_image(objects: list[Obj], image: Obj) -> None:
    for obj in objects:
        pod = _pod_spec(obj)
        for container in (pod or {}).get("containers", []) + (pod or {}).get("initContainers", []):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                name = image.get("newName", name)
                tag = image.get("newTag", tag)
                container["image"] = f"{name}:{tag}" if tag else name


def _add_labels(objects: list[Obj], label: Obj) -> None:
    pairs: dict[str, str] = label["pairs"]
    if label.get("includeSelectors") or set(label) - {"pairs", "includeTemplates"}:
        raise KustomizeError(f"labels {label}: only pairs and includeTemplates are supported")
    templates = bool(label.get("includeTemplates", False))
    for obj in objects:
        obj.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        if templates and obj["kind"] in WORKLOADS:
            obj["spec"]["template"].setdefault("metadata", {}).setdefault("labels", {})
            obj["spec"]["template"]["metadata"]["labels"].update(pairs)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: kustomize_lite.py FOLDER\n")
        return 2
    sys.stdout.write(yaml.safe_dump_all(build(Path(argv[0])), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
