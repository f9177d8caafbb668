"""The Kubernetes kit (deploy/k8s), rendered and checked offline.

Overlays are rendered with scripts/kustomize_lite.py (and compared with `kubectl kustomize`
when a kubectl binary is present); built-in kinds are validated against the schemas that
kubernetes-validate bundles, KEDA's kinds against the CRD schemas vendored in
deploy/k8s/schemas; NetworkPolicies are evaluated as Kubernetes does, pod to pod."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.test_deploy import DATA_DIR, _user_id, assert_no_plaintext_secrets

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("single-host", "eu-us")
REGIONS = {"eu": "eu-de", "us": "us-east"}
KUBERNETES_VERSION = "1.30.0"  # the oldest minor we claim; the schemas are strict (no extras)
NAMESPACE = "privacy-gateway"
Obj = dict[str, Any]


@cache
def lite() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "kustomize_lite", ROOT / "scripts/kustomize_lite.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["kustomize_lite"] = module
    spec.loader.exec_module(module)
    return module


@cache
def _rendered(overlay: str) -> tuple[Obj, ...]:
    return tuple(lite().build(K8S / "overlays" / overlay))


def rendered(overlay: str) -> list[Obj]:
    return copy.deepcopy(list(_rendered(overlay)))


def by_kind(overlay: str, kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in rendered(overlay) if o["kind"] == kind}


def deployments(overlay: str) -> dict[str, Obj]:
    return by_kind(overlay, "Deployment")


def env_of(container: Obj) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


# -- rendering ----------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl binary here")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_renderer_gives_what_kubectl_kustomize_gives(overlay: str) -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout

    def key(o: Obj) -> tuple[str, str]:
        return o["kind"], o["metadata"]["name"]

    theirs = sorted((d for d in yaml.safe_load_all(out) if d), key=key)
    assert sorted(rendered(overlay), key=key) == theirs


def test_the_renderer_applies_json_patches_and_refuses_what_it_does_not_do(
    tmp_path: Path,
) -> None:
    doc: Obj = {"a": {"list": [1, 2]}, "b": 1}
    lite().json_patch(doc, {"op": "add", "path": "/a/list/-", "value": 3})
    lite().json_patch(doc, {"op": "add", "path": "/a/list/0", "value": 0})
    lite().json_patch(doc, {"op": "replace", "path": "/b", "value": {"x~y": 2}})
    lite().json_patch(doc, {"op": "remove", "path": "/a/list/1"})
    assert doc == {"a": {"list": [0, 2, 3]}, "b": {"x~y": 2}}
    with pytest.raises(lite().KustomizeError):
        lite().json_patch(doc, {"op": "replace", "path": "/missing", "value": 1})
    with pytest.raises(lite().KustomizeError):
        lite().json_patch(doc, {"op": "move", "path": "/b", "from": "/a"})
    (tmp_path / "kustomization.yaml").write_text("resources: []\nreplicas: []\n")
    with pytest.raises(lite().KustomizeError, match="unsupported fields"):
        lite().build(tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "labels:\n  - pairs: {a: b}\n    includeSelectors: true\n"
    )
    with pytest.raises(lite().KustomizeError, match="includeSelectors"):
        lite().build(tmp_path)


def test_every_manifest_file_is_reached_by_some_overlay() -> None:
    used: set[Path] = set()

    def walk(folder: Path) -> None:
        spec = yaml.safe_load((folder / "kustomization.yaml").read_text(encoding="utf-8"))
        used.add(folder / "kustomization.yaml")
        for entry in spec.get("resources", []):
            target = (folder / entry).resolve()
            walk(target) if target.is_dir() else used.add(target)
        used.update((folder / p["path"]).resolve() for p in spec.get("patches", []))

    for overlay in OVERLAYS:
        walk((K8S / "overlays" / overlay).resolve())
    on_disk = {p.resolve() for p in K8S.rglob("*.yaml")}
    assert on_disk == {p.resolve() for p in used}


# -- schemas ------------------------------------------------------------------------------------


def _strict(schema: Any) -> Any:
    """A CRD schema as the API server's strict field validation applies it: unknown fields in
    an object with declared properties are errors (kubectl apply --validate=strict)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            if not out.get("x-kubernetes-preserve-unknown-fields"):
                out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@cache
def keda_schema(kind: str) -> Obj:
    path = K8S / "schemas" / f"{kind.lower()}-keda-v1alpha1.json"
    loaded: Obj = _strict(json.loads(path.read_text(encoding="utf-8")))
    return loaded


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates_against_its_schema(overlay: str) -> None:
    kinds = set()
    for obj in rendered(overlay):
        kinds.add(obj["kind"])
        if obj["apiVersion"].startswith("keda.sh/"):
            assert obj["apiVersion"] == "keda.sh/v1alpha1"
            jsonschema.Draft7Validator(keda_schema(obj["kind"])).validate(obj)
        else:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    assert {"Namespace", "Deployment", "Service", "NetworkPolicy", "PodDisruptionBudget"} <= kinds


def test_the_keda_schema_catches_a_misspelt_field() -> None:
    scaled = next(iter(by_kind("eu-us", "ScaledObject").values()))
    scaled["spec"]["maxReplicas"] = 5  # the HPA's spelling, not KEDA's
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(keda_schema("ScaledObject")).validate(scaled)


# -- pods: restricted security, probes, images --------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_namespace_enforces_the_restricted_pod_security_standard(overlay: str) -> None:
    (namespace,) = by_kind(overlay, "Namespace").values()
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
    for obj in rendered(overlay):
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_meets_the_restricted_profile(overlay: str) -> None:
    for name, deployment in deployments(overlay).items():
        spec = deployment["spec"]["template"]["spec"]
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert str(spec["securityContext"]["runAsUser"]) == _user_id(), name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert "hostNetwork" not in spec and "hostPID" not in spec, name
        for volume in spec["volumes"]:
            assert "hostPath" not in volume, name
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in security["capabilities"], name
            assert security["seccompProfile"]["type"] == "RuntimeDefault", name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= container["resources"][kind].keys(), name
            image, _, tag = container["image"].rpartition(":")
            assert image and tag and tag != "latest", name
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts, f"{name}: a read-only root needs a writable /tmp"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_servers_have_ready_and_live_probes(overlay: str) -> None:
    for name, deployment in deployments(overlay).items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        if container["args"][0] == "scheduler":
            assert "ports" not in container, name  # serves nothing
            continue  # Kubernetes restarts it when it exits
        assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"http": 8000}
        paths = {"readinessProbe": "/health/ready", "livenessProbe": "/health/live"}
        for probe, path in paths.items():
            get = container[probe]["httpGet"]
            assert get["path"] == path and get["port"] in {"http", 8000}, (name, probe)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_service_selects_the_api_pods_only(overlay: str) -> None:
    (service,) = by_kind(overlay, "Service").values()
    selector = service["spec"]["selector"]
    for name, deployment in deployments(overlay).items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert (selector.items() <= labels.items()) == name.endswith("-api"), name
    assert service["spec"]["ports"][0]["targetPort"] == "http"


# -- layouts ------------------------------------------------------------------------------------


def test_single_host_is_one_api_pod_running_jobs_on_its_volume() -> None:
    found = deployments("single-host")
    assert set(found) == {"privacy-gateway-api"}
    api = found["privacy-gateway-api"]
    assert api["spec"]["replicas"] == 1 and api["spec"]["strategy"]["type"] == "Recreate"
    spec = api["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    env = env_of(container)
    assert "GATEWAY_BROKER_URL_FILE" not in env and "GATEWAY_ROLE" not in env  # embedded runner
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    (claim,) = by_kind("single-host", "PersistentVolumeClaim")
    assert volumes[mounts[DATA_DIR]]["persistentVolumeClaim"]["claimName"] == claim
    assert env["GATEWAY_MASTER_KEY_FILE"].startswith(
        next(p for p, n in mounts.items() if "secret" in volumes[n]) + "/"
    )


def test_eu_us_runs_stateless_apis_one_scheduler_and_workers_per_region() -> None:
    found = deployments("eu-us")
    workers = {f"privacy-gateway-worker-{r}" for r in REGIONS}
    assert set(found) == {"privacy-gateway-api", "privacy-gateway-scheduler"} | workers
    api = found["privacy-gateway-api"]
    assert api["spec"]["replicas"] == 2
    assert env_of(api["spec"]["template"]["spec"]["containers"][0])["GATEWAY_ROLE"] == "api"
    assert not by_kind("eu-us", "PersistentVolumeClaim"), "API replicas keep nothing on disk"
    scheduler = found["privacy-gateway-scheduler"]
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"]["type"] == "Recreate", "never two schedulers at once"
    for name, deployment in found.items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            env = env_of(container)
            assert "GATEWAY_MASTER_KEY_FILE" not in env, f"{name}: keys come from the region KMS"
            assert env["GATEWAY_BROKER_URL_FILE"].startswith("/run/secrets/"), name


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_a_worker_consumes_its_region_queue_on_its_region_nodes(region: str) -> None:
    worker = deployments("eu-us")[f"privacy-gateway-worker-{region}"]
    pod = worker["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    args = container["args"]
    assert args[0] == "worker"
    queue = args[args.index("--queues") + 1]
    assert args[args.index("--region") + 1] == REGIONS[region]
    assert queue.endswith(REGIONS[region]) and "," not in queue
    assert env_of(container)["GATEWAY_REGION"] == REGIONS[region]
    assert pod["metadata"]["labels"]["privacy-gateway/region"] == region
    node_region = pod["spec"]["nodeSelector"]["topology.kubernetes.io/region"]
    assert node_region.startswith(f"{region}-")


# -- secrets: per region, never in the files ----------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_referenced_never_committed(overlay: str) -> None:
    assert not by_kind(overlay, "Secret"), "reference the Secret; never commit its values"
    for name, deployment in deployments(overlay).items():
        spec = deployment["spec"]["template"]["spec"]
        for container in spec["containers"]:
            assert all(
                "valueFrom" not in e or "secretKeyRef" in e["valueFrom"] for e in container["env"]
            )
            env = env_of(container)
            assert_no_plaintext_secrets(env, name)
            secret_dirs = {
                m["mountPath"]
                for m in container["volumeMounts"]
                if "secret" in next(v for v in spec["volumes"] if v["name"] == m["name"])
            }
            for key, value in env.items():
                if key.endswith("_FILE"):
                    assert any(value.startswith(d + "/") for d in secret_dirs), (name, key)


def mounted_secrets(deployment: Obj) -> set[str]:
    spec = deployment["spec"]["template"]["spec"]
    mounted = {m["name"] for c in spec["containers"] for m in c["volumeMounts"]}
    return {
        v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v and v["name"] in mounted
    }


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_a_worker_holds_only_its_own_regions_key_and_bucket_credentials(region: str) -> None:
    found = deployments("eu-us")
    worker = found[f"privacy-gateway-worker-{region}"]
    assert mounted_secrets(worker) == {"privacy-gateway", f"privacy-gateway-{region}"}
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    assert env["GATEWAY_KMS_CREDENTIAL_FILE"].startswith(f"/run/secrets/privacy-gateway-{region}/")
    buckets = json.loads(env["GATEWAY_S3_BUCKETS"])
    assert list(buckets) == [REGIONS[region]], "its own region's bucket, no other"
    (bucket,) = buckets.values()
    for key in ("access_key_id_file", "secret_access_key_file"):
        assert bucket[key].startswith(f"/run/secrets/privacy-gateway-{region}/"), key
    others = [r for r in REGIONS if r != region]
    assert not any(f"privacy-gateway-{o}" in json.dumps(worker) for o in others)
    # the API is of region eu-de: the eu credential, never the us one
    assert mounted_secrets(found["privacy-gateway-api"]) == {
        "privacy-gateway",
        "privacy-gateway-eu",
    }


def test_the_scheduler_holds_only_the_gateway_wide_key_service_credential() -> None:
    """No region's Secret (no region key, no bucket): what needs them runs on the workers."""
    scheduler = deployments("eu-us")["privacy-gateway-scheduler"]
    assert mounted_secrets(scheduler) == {"privacy-gateway", "privacy-gateway-scheduler"}
    (container,) = scheduler["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    assert env["GATEWAY_KMS_CREDENTIAL_FILE"] == (
        "/run/secrets/privacy-gateway-scheduler/kms_credential"
    )
    assert "GATEWAY_S3_BUCKETS" not in env and "GATEWAY_MASTER_KEY_FILE" not in env
    assert not any(f"privacy-gateway-{r}" in json.dumps(scheduler) for r in REGIONS)


# -- autoscaling and disruption -----------------------------------------------------------------


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_keda_scales_each_region_worker_on_its_own_queue(region: str) -> None:
    name = f"privacy-gateway-worker-{region}"
    scaled = by_kind("eu-us", "ScaledObject")[name]
    worker = deployments("eu-us")[name]
    args = worker["spec"]["template"]["spec"]["containers"][0]["args"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == name
    assert 1 <= scaled["spec"]["minReplicaCount"] < scaled["spec"]["maxReplicaCount"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == args[args.index("--queues") + 1]
    assert trigger["metadata"]["mode"] == "QueueLength" and int(trigger["metadata"]["value"]) > 0
    assert "host" not in trigger["metadata"], "the AMQP URL carries a password: from a Secret"
    auth = by_kind("eu-us", "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
    assert [r["parameter"] for r in auth["spec"]["secretTargetRef"]] == ["host"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_disruption_budgets_cover_api_and_workers(overlay: str) -> None:
    budgets = by_kind(overlay, "PodDisruptionBudget")
    for name, deployment in deployments(overlay).items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [
            b
            for b in budgets.values()
            if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        if name.endswith("-scheduler"):
            assert not covering  # one replica, Recreate: a budget would only block drains
        else:
            assert len(covering) == 1, name
            assert covering[0]["spec"]["maxUnavailable"] == 1


# -- NetworkPolicies, evaluated -----------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    labels: dict[str, str]
    namespace: str = NAMESPACE
    ns_labels: dict[str, str] = field(default_factory=dict)

    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace, **self.ns_labels}


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, op, values = expression["key"], expression["operator"], expression.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def peer_matches(peer: Obj, policy_namespace: str, pod: Pod) -> bool:
    assert "ipBlock" not in peer, "peers are pods, never address ranges"
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], pod.namespace_labels()):
            return False
    elif pod.namespace != policy_namespace:
        return False
    return selects(peer.get("podSelector", {}), pod.labels)


def port_matches(rule: Obj, port: int) -> bool:
    return "ports" not in rule or any(p["port"] == port for p in rule["ports"])


def allowed(policies: list[Obj], source: Pod, target: Pod, port: int) -> bool:
    """Whether `source` may open a TCP connection to `target`:`port` under `policies`."""

    def side(direction: str, own: Pod, other: Pod, peers: str) -> bool:
        selecting = [
            p
            for p in policies
            if p["metadata"]["namespace"] == own.namespace
            and direction in p["spec"]["policyTypes"]
            and selects(p["spec"]["podSelector"], own.labels)
        ]
        if not selecting:
            return True  # not isolated in that direction
        return any(
            port_matches(rule, port)
            and ("to" if peers == "to" else "from") in rule
            and any(peer_matches(peer, own.namespace, other) for peer in rule[peers])
            for policy in selecting
            for rule in policy["spec"].get(direction.lower(), [])
        )

    return side("Egress", source, target, "to") and side("Ingress", target, source, "from")


def gateway_pod(overlay: str, name: str) -> Pod:
    deployment = deployments(overlay)[f"privacy-gateway-{name}"]
    return Pod(deployment["spec"]["template"]["metadata"]["labels"])


def store(region: str) -> Pod:
    return Pod({"app.kubernetes.io/name": "object-store", "privacy-gateway/region": region})


def kms(region: str) -> Pod:
    return Pod({"app.kubernetes.io/name": "kms", "privacy-gateway/region": region})


LABEL_STUDIO = Pod({"app.kubernetes.io/name": "label-studio"})
ML_BACKEND = Pod({"app.kubernetes.io/name": "ml-backend"})
POSTGRES = Pod({"app.kubernetes.io/name": "postgres"})
RABBITMQ = Pod({"app.kubernetes.io/name": "rabbitmq"})
DNS = Pod({"k8s-app": "kube-dns"}, namespace="kube-system")
ELSEWHERE = Pod({"app": "anything"}, namespace="internet")


def test_only_the_api_and_the_regions_own_workers_reach_its_originals_and_keys() -> None:
    policies = list(by_kind("eu-us", "NetworkPolicy").values())
    api, scheduler = gateway_pod("eu-us", "api"), gateway_pod("eu-us", "scheduler")
    for region in REGIONS:
        worker = gateway_pod("eu-us", f"worker-{region}")
        for originals, port in ((store, 9000), (kms, 8200)):
            assert allowed(policies, worker, originals(region), port), (region, port)
            # the API and the scheduler are of region eu-de
            assert allowed(policies, api, originals(region), port) == (region == "eu")
            signer = originals is kms and region == "eu"  # the gateway-wide signing key
            assert allowed(policies, scheduler, originals(region), port) == signer
            assert not allowed(policies, LABEL_STUDIO, originals(region), port)
            assert not allowed(policies, ML_BACKEND, originals(region), port)
            for other in REGIONS:
                if other != region:
                    assert not allowed(policies, worker, originals(other), port), (region, other)
                    other_worker = gateway_pod("eu-us", f"worker-{other}")
                    assert not allowed(policies, other_worker, originals(region), port)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_gateway_pods_reach_their_dependencies_and_nothing_else(overlay: str) -> None:
    policies = list(by_kind(overlay, "NetworkPolicy").values())
    for name in deployments(overlay):
        pod = gateway_pod(overlay, name.removeprefix("privacy-gateway-"))
        assert allowed(policies, pod, POSTGRES, 5432), name
        assert allowed(policies, pod, DNS, 53), name
        assert not allowed(policies, pod, ELSEWHERE, 443), f"{name} reaches the internet"
        assert not allowed(policies, pod, POSTGRES, 8080), name
        is_api = name.endswith("-api")
        assert allowed(policies, LABEL_STUDIO, pod, 8000) == is_api, name
        assert allowed(policies, pod, LABEL_STUDIO, 8080) == (not name.endswith("-scheduler"))
        assert allowed(policies, pod, RABBITMQ, 5672) == (overlay == "eu-us"), name


# -- settings the manifests name are settings the gateway reads ---------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_environment_builds_valid_settings(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.core.settings import Settings

    for name, deployment in deployments(overlay).items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        with monkeypatch.context() as patched:
            for key, value in env_of(container).items():
                patched.setenv(key, value)
            settings = Settings()
        assert settings.region == env_of(container)["GATEWAY_REGION"], name
        if settings.storage_backend == "s3":  # the bucket it writes to is its own region's
            assert list(settings.s3_buckets) == [settings.region], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_gateway_variable_is_read_by_the_gateway_or_its_entry_point(overlay: str) -> None:
    from gateway.core.settings import Settings

    known = {f"GATEWAY_{name.upper()}" for name in Settings.model_fields}
    entrypoint = (ROOT / "deploy/entrypoint.sh").read_text(encoding="utf-8")
    for name, deployment in deployments(overlay).items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for key in env_of(container):
                if key.startswith("GATEWAY_"):
                    assert key in known or re.search(rf"\b{key}\b", entrypoint), (name, key)


def test_the_regions_differ_only_in_their_names() -> None:
    """A region is a copy of another with its names changed: no policy, budget or limit
    drifts between them unnoticed."""

    def text(region: str) -> str:
        return json.dumps(lite().build(K8S / "regions" / region), sort_keys=True)

    eu = text("eu")
    us = (
        text("us")
        .replace("us-east-1", "eu-central-1")
        .replace(REGIONS["us"], REGIONS["eu"])
        .replace("-us", "-eu")
        .replace('"us"', '"eu"')
        .replace("us's", "eu's")
    )
    assert us == eu
