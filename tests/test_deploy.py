"""The deployment files, checked by parsing them (no container engine runs here)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.storage.s3.conftest import moto_endpoint

__all__ = ["moto_endpoint"]  # fixture: moto's S3 server on loopback (the bucket job's test)

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DATA_DIR = "/var/lib/privacy-gateway"
SECRET_WORDS = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|(^|_)KEY($|_)|CREDENTIAL", re.IGNORECASE)
URL_WITH_PASSWORD = re.compile(r"://[^/@\s:]+:[^/@\s]+@")


# -- a small Containerfile parser ---------------------------------------------------------------


def containerfile(path: Path = DEPLOY / "Containerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line.removesuffix(chr(92)).strip()}".strip()
        if not line.endswith("\\"):
            keyword, _, args = pending.partition(" ")
            instructions.append((keyword.upper(), args.strip()))
            pending = ""
    assert not pending, "Containerfile ends inside a continued line"
    return instructions


def args_of(keyword: str) -> list[str]:
    return [args for kw, args in containerfile() if kw == keyword]


def setup_sh_debian_packages() -> list[str]:
    text = (ROOT / "scripts/setup.sh").read_text(encoding="utf-8")
    match = re.search(r"^DEBIAN_PACKAGES=\(([^)]*)\)", text, re.MULTILINE)
    assert match, "scripts/setup.sh no longer defines DEBIAN_PACKAGES=(...)"
    return shlex.split(match.group(1))


def apt_installed_packages() -> list[str]:
    packages: list[str] = []
    for run in args_of("RUN"):
        for command in re.split(r"&&|;", run):
            words = shlex.split(command)
            if "apt-get" in words and "install" in words:
                after = words[words.index("install") + 1 :]
                packages += [w for w in after if not w.startswith("-")]
    return packages


def test_containerfile_base_image_is_pinned_debian_python_311() -> None:
    froms = args_of("FROM")
    assert froms == ["python:3.11-slim-bookworm"]
    _, _, tag = froms[0].partition(":")
    assert tag and tag != "latest"


def test_containerfile_installs_exactly_the_debian_packages_of_setup_sh() -> None:
    assert sorted(apt_installed_packages()) == sorted(setup_sh_debian_packages())
    assert any("--no-install-recommends" in run for run in args_of("RUN"))
    assert any("rm -rf /var/lib/apt/lists" in run for run in args_of("RUN"))


def test_containerfile_installs_the_project_with_setup_sh() -> None:
    runs = args_of("RUN")
    assert "scripts/setup.sh" in runs, "the image must be set up by scripts/setup.sh itself"
    setup_index = next(i for i, (kw, a) in enumerate(containerfile()) if a == "scripts/setup.sh")
    apt_index = next(i for i, (kw, a) in enumerate(containerfile()) if "apt-get install" in a)
    assert apt_index < setup_index


def test_containerfile_copies_only_paths_that_exist() -> None:
    for args in args_of("COPY"):
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        for source in words[:-1]:
            path = ROOT / source
            assert path.exists(), f"COPY {source}: not in the repository"
            if path.is_dir():
                assert any(path.iterdir()), f"COPY {source}: empty folder (git drops it)"
        assert not any("secrets" in w for w in words), "secrets never go into the image"


def _user_id() -> str:
    users = args_of("USER")
    assert users, "the image must switch to a non-root user"
    uid = users[-1].split(":")[0]
    assert uid not in {"root", "0"}
    return uid


def test_containerfile_runs_as_non_root_with_data_volume_port_and_healthcheck() -> None:
    assert _user_id() == "10001"
    assert any(DATA_DIR in v for v in args_of("VOLUME"))
    assert any(f"GATEWAY_DATA_DIR={DATA_DIR}" in e for e in args_of("ENV"))
    assert args_of("EXPOSE") == ["8000"]
    (health,) = args_of("HEALTHCHECK")
    assert "/health" in health and "urllib.request" in health and "curl" not in health
    (entrypoint,) = args_of("ENTRYPOINT")
    assert "deploy/entrypoint.sh" in entrypoint
    assert args_of("CMD") == ['["serve"]']


def test_entrypoint_runs_init_then_serve_and_a_worker_loop() -> None:
    script = DEPLOY / "entrypoint.sh"
    assert os.access(script, os.X_OK), "deploy/entrypoint.sh must be executable"
    text = script.read_text(encoding="utf-8")
    assert text.index("privacy-gateway init") < text.index("privacy-gateway serve")
    assert "--host 0.0.0.0 --port 8000" in text
    assert "privacy-gateway worker --host 0.0.0.0 --port 8000" in text
    sh = shutil.which("sh")
    assert sh is not None
    subprocess.run([sh, "-n", str(script)], check=True)


def test_entrypoint_commands_exist_in_the_cli() -> None:
    from gateway.cli import app

    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    assert {"init", "serve", "worker", "scheduler"} <= names


def test_build_context_ignores_secrets_and_the_virtualenv() -> None:
    ignored = (DEPLOY / "Containerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    assert {"deploy/secrets", ".venv", ".git"} <= set(ignored)


# -- compose ------------------------------------------------------------------------------------


class ComposeLoader(yaml.SafeLoader):
    """YAML as docker compose reads it: `!reset` drops an inherited value, `!override`
    replaces it instead of merging (compose 2.24+)."""


class Reset:
    pass


class Override:
    def __init__(self, value: Any) -> None:
        self.value = value


ComposeLoader.add_constructor("!reset", lambda _loader, _node: Reset())
ComposeLoader.add_constructor(
    "!override",
    lambda loader, node: Override(
        loader.construct_sequence(node, deep=True)
        if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node, deep=True)
    ),
)


def load_compose(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load((DEPLOY / name).read_text("utf-8"), ComposeLoader)  # noqa: S506
    return loaded


def compose() -> dict[str, Any]:
    return load_compose("compose.yaml")


def merge(base: Any, over: Any) -> Any:
    """`docker compose -f base -f over`: mappings merge key by key, sequences append (without
    repeats), scalars are replaced; `!reset` removes, `!override` replaces."""
    if isinstance(over, Override):
        return over.value
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            if isinstance(value, Reset):
                out.pop(key, None)
            else:
                out[key] = merge(base[key], value) if key in base else merge(None, value)
        return out
    if isinstance(base, list) and isinstance(over, list):
        return base + [v for v in over if v not in base]
    if isinstance(over, dict):
        return {k: merge(None, v) for k, v in over.items() if not isinstance(v, Reset)}
    return over


def scaled() -> dict[str, Any]:
    merged: dict[str, Any] = merge(compose(), load_compose("compose.scale.yaml"))
    return merged


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def assert_no_plaintext_secrets(env: dict[str, str], where: str) -> None:
    for key, value in env.items():
        assert not URL_WITH_PASSWORD.search(value), f"{where}: {key} carries a password"
        if SECRET_WORDS.search(key):
            assert key.endswith("_FILE"), f"{where}: {key} is a secret in clear; use a *_FILE"
            assert value.startswith("/run/secrets/"), f"{where}: {key} not from a secret mount"


LAYOUTS = {"single-host": compose, "scale-out": scaled}


def one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart")) == "no"


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_compose_has_the_services_with_healthchecks(layout: str) -> None:
    services = LAYOUTS[layout]()["services"]
    assert {"gateway", "postgres", "labelstudio", "ml-backend"} <= services.keys()
    for name, service in services.items():
        if one_shot(service):  # runs to completion; others wait for that, not for health
            continue
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    workers = [n for n, s in services.items() if s.get("command", [""])[0] == "worker"]
    for name in ("gateway", *workers):  # ready, not merely alive: it can do its work
        check = " ".join(services[name]["healthcheck"]["test"])
        assert "127.0.0.1:8000/health/ready" in check, name


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_compose_images_are_pinned_by_tag(layout: str) -> None:
    for name, service in LAYOUTS[layout]()["services"].items():
        image = service.get("image")
        assert image, f"{name} has no image"
        _, _, tag = image.rpartition(":")
        assert tag and "/" not in tag and tag != "latest", f"{name}: {image} is not pinned"
    labelstudio = compose()["services"]["labelstudio"]["image"]
    assert labelstudio.startswith("heartexlabs/label-studio:1.23.")


def test_compose_builds_the_gateway_from_the_containerfile() -> None:
    build = compose()["services"]["gateway"]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).resolve() == DEPLOY / "Containerfile"


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_compose_keeps_secrets_out_of_the_file(layout: str) -> None:
    doc = LAYOUTS[layout]()
    secrets = doc["secrets"]
    for name, service in doc["services"].items():
        env = environment(service)
        assert_no_plaintext_secrets(env, name)
        mounted = [s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])]
        assert set(mounted) <= secrets.keys(), name
        for key, value in env.items():
            if key.endswith("_FILE") and value.startswith("/run/secrets/"):
                assert value.removeprefix("/run/secrets/") in mounted, key
    for name, spec in secrets.items():
        assert spec["file"].startswith("./secrets/"), name
    gitignore = (DEPLOY / "secrets/.gitignore").read_text(encoding="utf-8").splitlines()
    assert "*" in gitignore and "!README.md" in gitignore
    readme = (DEPLOY / "secrets/README.md").read_text(encoding="utf-8")
    assert all(name in readme for name in secrets)


def test_compose_gateway_settings_are_real_settings() -> None:
    env = environment(compose()["services"]["gateway"])
    assert env["GATEWAY_DATABASE_URL"].startswith("postgresql+psycopg://gateway@postgres:5432/")
    assert env["GATEWAY_MASTER_KEY_FILE"] == "/run/secrets/gateway_master_key"
    assert "GATEWAY_REGION" in env


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_compose_variables_are_read_by_the_gateway_the_ml_backend_or_the_entry_point(
    layout: str,
) -> None:
    from gateway.core.settings import Settings
    from ml_backend.settings import MLBackendSettings

    known = {f"GATEWAY_{name.upper()}" for name in Settings.model_fields}
    known |= {f"GATEWAY_ML_{name.upper()}" for name in MLBackendSettings.model_fields}
    entrypoint = (DEPLOY / "entrypoint.sh").read_text(encoding="utf-8")
    for name, service in LAYOUTS[layout]()["services"].items():
        for key in environment(service):
            if key.startswith("GATEWAY_"):
                assert key in known or re.search(rf"\b{key}\b", entrypoint), (name, key)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_compose_references_resolve(layout: str) -> None:
    doc = LAYOUTS[layout]()
    services = doc["services"]
    for name, service in services.items():
        for target in service.get("depends_on", {}):
            assert target in services, (name, target)
            assert target != name
        assert set(service.get("networks", [])) <= doc["networks"].keys(), name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source in doc["volumes"], (name, source)
        for target, condition in (service.get("depends_on") or {}).items():
            if condition["condition"] == "service_completed_successfully":
                assert one_shot(services[target]), (name, target)
            else:
                assert not one_shot(services[target]), (name, target)


def test_scale_out_workers_take_their_regions_queue_with_their_regions_credential() -> None:
    from gateway.scaleout.broker import region_queue

    services = scaled()["services"]
    workers = {n: s for n, s in services.items() if "--queues" in s.get("command", [])}
    assert set(workers) == {"worker-eu", "worker-us"}
    for name, worker in workers.items():
        command, env = worker["command"], environment(worker)
        region = command[command.index("--region") + 1]
        assert env["GATEWAY_REGION"] == region
        assert command[command.index("--queues") + 1] == region_queue(region)
        short = name.removeprefix("worker-")
        assert region.startswith(f"{short}-")
        credentials = [s for s in worker["secrets"] if s.startswith("kms_credential_")]
        assert credentials == [f"kms_credential_{short}"], name
        assert env["GATEWAY_KMS_CREDENTIAL_FILE"] == f"/run/secrets/kms_credential_{short}"
        assert "gateway_master_key" not in worker["secrets"]
    for name, service in services.items():  # no process holds two regions' credentials
        held = [s for s in service.get("secrets", []) if str(s).startswith("kms_credential_")]
        assert len(held) <= 1, name


def test_scale_out_runs_stateless_api_replicas_on_the_broker_and_one_scheduler() -> None:
    services = scaled()["services"]
    api = services["gateway"]
    env = environment(api)
    assert api["deploy"]["replicas"] == 2
    first, _, last = api["ports"][0].split(":")[1].partition("-")
    assert int(last) - int(first) + 1 >= api["deploy"]["replicas"]
    assert env["GATEWAY_ROLE"] == "api" and "GATEWAY_BROKER_URL_FILE" in env
    assert "GATEWAY_MASTER_KEY_FILE" not in env and "gateway_master_key" not in api["secrets"]
    assert (
        environment(services["scheduler"])["GATEWAY_WORKER_REGIONS"]
        == env["GATEWAY_WORKER_REGIONS"]
    )
    assert services["scheduler"]["command"] == ["scheduler"]
    assert "replicas" not in services["scheduler"].get("deploy", {})
    ml = environment(compose()["services"]["ml-backend"])
    assert "GATEWAY_ML_GATEWAY_ALLOW_LOCAL_ADDRESSES" not in ml, "private addresses need no opt-in"
    # the embedded single-host default stays: no broker, no key service
    single = environment(compose()["services"]["gateway"])
    assert "GATEWAY_BROKER_URL_FILE" not in single and "GATEWAY_KMS_URL" not in single


def test_compose_start_order_waits_for_health() -> None:
    services = compose()["services"]
    depends = services["gateway"]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["labelstudio"]["condition"] == "service_healthy"
    assert services["gateway"]["volumes"] == [f"gateway-data:{DATA_DIR}"]
    assert "postgres" not in str(services["labelstudio"].get("environment", {})).lower()


# Kubernetes: tests/test_deploy_k8s.py


# -- scale-out: one bucket per region, no shared originals volume, custody of credentials ------

GATEWAY_COMMANDS = {"worker", "scheduler"}
REGION_SHORT = {"eu-de": "eu", "us-east": "us"}


def default_services() -> dict[str, dict[str, Any]]:
    """What `up` starts with the scale-out file (services behind a profile are left out: the
    single host's extra embedded `worker` profile is not part of this layout)."""
    return {n: s for n, s in scaled()["services"].items() if not s.get("profiles")}


def gateway_services() -> dict[str, dict[str, Any]]:
    return {
        n: s
        for n, s in default_services().items()
        if s.get("image", "").startswith("privacy-gateway:")
        and (n == "gateway" or (s.get("command") or [""])[0] in GATEWAY_COMMANDS)
    }


def mounted(service: dict[str, Any]) -> list[str]:
    return [s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])]


def named_volumes(service: dict[str, Any]) -> list[str]:
    return [v.split(":", 1)[0] for v in service.get("volumes", []) if not v.startswith(("/", "."))]


def test_scale_out_shares_no_volume_and_keeps_no_originals_on_disk() -> None:
    services = default_services()
    gateway = gateway_services()
    assert set(gateway) == {"gateway", "scheduler", "worker-eu", "worker-us"}
    for name, service in gateway.items():
        assert named_volumes(service) == [], f"{name}: blobs live in buckets, not a volume"
        tmpfs = [t.split(":", 1)[0] for t in service.get("tmpfs", [])]
        assert DATA_DIR in tmpfs, f"{name}: its data directory is a tmpfs (nothing to keep)"
        assert "GATEWAY_STORAGE_DIR" not in environment(service)
    users: dict[str, list[str]] = {}
    for name, service in services.items():
        for volume in named_volumes(service):
            users.setdefault(volume, []).append(name)
    shared = {v: names for v, names in users.items() if len(names) > 1}
    assert shared == {}, f"volumes mounted by more than one service: {shared}"
    assert "gateway-data" not in users


@pytest.mark.parametrize("name", ["gateway", "worker-eu", "worker-us"])
def test_each_gateway_service_names_only_its_regions_bucket_and_credentials(name: str) -> None:
    from gateway.core.settings import S3Bucket, Settings

    services = default_services()
    service = services[name]
    env = environment(service)
    region = env["GATEWAY_REGION"] if name != "gateway" else "eu-de"  # the API's: eu-de
    short = REGION_SHORT[region]
    assert env["GATEWAY_STORAGE_BACKEND"] == "s3"
    buckets = json.loads(env["GATEWAY_S3_BUCKETS"])
    assert list(buckets) == [region], f"{name}: its own region's bucket, no other"
    bucket = S3Bucket.model_validate(buckets[region])
    assert bucket.bucket == f"privacy-gateway-{region}"
    assert bucket.endpoint_url == f"http://object-store-{short}:8333"
    secrets = mounted(service)
    for path in (bucket.access_key_id_file, bucket.secret_access_key_file):
        assert path is not None and str(path).startswith("/run/secrets/")
        assert str(path).removeprefix("/run/secrets/") in secrets
    for secret in secrets:  # bucket and key-service credentials: its own region's only
        if secret.startswith(("s3_", "kms_credential_")):
            assert secret.endswith(f"_{short}"), (name, secret)
    assert env["GATEWAY_KMS_CREDENTIAL_FILE"] == f"/run/secrets/kms_credential_{short}"
    storage = [n for n in service["networks"] if n.startswith("storage-")]
    assert storage == [f"storage-{short}"], f"{name} reaches only its region's store"
    # the settings these variables make are valid for this process (JSON parsed as the
    # gateway parses it; the write region's bucket is named)
    made = Settings(
        storage_backend="s3", region=region, s3_buckets=buckets, database_url="sqlite://"
    )
    assert list(made.s3_buckets) == [region]


def test_the_scheduler_holds_the_gateway_wide_credential_and_no_bucket() -> None:
    scheduler = default_services()["scheduler"]
    env = environment(scheduler)
    assert mounted(scheduler) == ["postgres_password", "broker_url", "kms_credential_gateway"]
    assert env["GATEWAY_KMS_CREDENTIAL_FILE"] == "/run/secrets/kms_credential_gateway"
    assert not {"GATEWAY_S3_BUCKETS", "GATEWAY_STORAGE_BACKEND", "GATEWAY_MASTER_KEY_FILE"} & set(
        env
    )
    assert not [n for n in scheduler["networks"] if n.startswith("storage-")]
    holders = [n for n, s in default_services().items() if "kms_credential_gateway" in mounted(s)]
    assert holders == ["scheduler"]


@pytest.mark.parametrize("short", ["eu", "us"])
def test_each_regions_object_store_and_bucket_job(short: str) -> None:
    doc = scaled()
    services = default_services()
    region = {v: k for k, v in REGION_SHORT.items()}[short]
    store, job = services[f"object-store-{short}"], services[f"buckets-{short}"]
    assert store["image"].startswith("chrislusf/seaweedfs:")  # Apache-2.0
    assert f"-s3.config=/run/secrets/s3_config_{short}" in store["command"]
    assert mounted(store) == [f"s3_config_{short}"]
    assert store["networks"] == [f"storage-{short}"]
    assert doc["networks"][f"storage-{short}"]["internal"] is True
    assert one_shot(job) and mounted(job) == [f"s3_admin_{short}"]
    assert job["networks"] == [f"storage-{short}"]
    job_env = environment(job)
    assert job_env["S3_ENDPOINT"] == f"http://object-store-{short}:8333"
    assert job_env["S3_BUCKET"] == f"privacy-gateway-{region}"
    assert job["depends_on"][f"object-store-{short}"]["condition"] == "service_healthy"
    on_network = {n for n, s in services.items() if f"storage-{short}" in s.get("networks", [])}
    expected = {f"object-store-{short}", f"buckets-{short}", f"worker-{short}"}
    assert on_network == expected | ({"gateway"} if short == "eu" else set())
    for name in on_network - {f"object-store-{short}", f"buckets-{short}"}:
        assert f"buckets-{short}" in _waits_for(services, name), f"{name} before its bucket"
    admins = [n for n, s in services.items() if any(x.startswith("s3_admin") for x in mounted(s))]
    assert sorted(admins) == ["buckets-eu", "buckets-us"]


def _waits_for(services: dict[str, dict[str, Any]], name: str) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        for target in services[todo.pop()].get("depends_on") or {}:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_bucket_job_creates_its_bucket_once_against_s3(moto_endpoint, tmp_path) -> None:
    """The one-shot job's script, run as compose runs it, against moto's S3 on loopback:
    the bucket is made, and a second run (a restart) is a no-op."""
    from tests.storage.s3.conftest import admin_client

    job = default_services()["buckets-eu"]
    command = job["command"]
    assert command[:2] == ["python", "-c"]
    admin = tmp_path / "s3_admin_eu"
    admin.write_text("ADMINKEY adminsecret\n")
    bucket = f"privacy-gateway-eu-de-{os.getpid()}"
    env = {
        "PATH": os.environ["PATH"],
        "S3_ENDPOINT": moto_endpoint,
        "S3_BUCKET": bucket,
        "S3_ADMIN_FILE": str(admin),
    }
    for _ in range(2):
        run = subprocess.run(
            [sys.executable, "-c", command[2]],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert f"bucket ready: {bucket}" in run.stdout
    names = [b["Name"] for b in admin_client(moto_endpoint).list_buckets()["Buckets"]]
    assert names.count(bucket) == 1


def test_the_single_host_compose_keeps_its_volume_and_no_bucket() -> None:
    services = compose()["services"]
    for name in ("gateway", "worker"):
        env = environment(services[name])
        assert "GATEWAY_S3_BUCKETS" not in env and "GATEWAY_STORAGE_BACKEND" not in env
        assert services[name]["volumes"] == [f"gateway-data:{DATA_DIR}"]
    assert not [n for n in services if n.startswith(("object-store", "buckets"))]
