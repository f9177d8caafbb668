"""Two worker hosts, one in the EU (eu-de) and one in the US (us-east), as network
namespaces against one broker and one database: each takes only its region's jobs; an eu job
id sent to the us queue is refused there and recorded, and the us host's credential cannot
unwrap the eu dataset's key (the key service refuses it); the eu host's worker killed with
SIGKILL mid-image loses and duplicates nothing. The hosts reach PostgreSQL, RabbitMQ and the
key service only through their veth link (socat in the root namespace), as separate machines
would."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlmodel import col, select

from gateway.core.clock import utc_now
from gateway.core.db import transaction
from gateway.core.models import Asset, AssetState, Job, JobState
from gateway.core.settings import Settings
from gateway.datasets import DatasetSpec, create_dataset
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from gateway.scaleout.broker import celery_app
from gateway.scaleout.relay import CeleryPublisher, dispatch
from tests.conftest import DATASET_SPEC, PHOTOS
from tests.policy.helpers import bind, lineage, policy_doc
from tests.scaleout.helpers import (
    BROKER_URL,
    delete_queues,
    gateway_env,
    kill_group,
    process,
    wait_for,
    with_broker,
)
from tests.scaleout.kms_fixtures import KmsService, gateway_wide_settings, region_ctx
from tests.scaleout.netns import Host, netns_or_skip

pytestmark = [pytest.mark.db, pytest.mark.integration, pytest.mark.timeout(240)]
SMALL = sorted(PHOTOS.glob("masks_*.jpg"))[:2]
DASHCAM = sorted(PHOTOS.glob("dashcam_*.jpg"))[:2]  # seconds each: time to kill mid-image
US_ONLY = {  # a US dataset under US law: processed, stored and annotated in the US only
    "origin": "us",
    "processing_regions": ["US"],
    "storage_regions": ["US"],
    "annotation_regions": ["US"],
}
UNWRAP_PROBE = """
import sys
from sqlmodel import Session
from gateway.core.context import GatewayContext
from gateway.core.errors import KeyCustodyRefused
from gateway.core.settings import Settings
ctx = GatewayContext.open(Settings(), migrate_schema=False)
try:
    with Session(ctx.engine) as s:
        ctx.keys.dataset_key(s, sys.argv[1])
except KeyCustodyRefused as exc:
    print("refused", exc.details.get("key_id"))
else:
    print("unwrapped")
"""


@pytest.fixture
def hosts() -> Iterator[dict[str, Host]]:
    netns_or_skip()
    made: dict[str, Host] = {}
    try:
        for region in ("eu-de", "us-east"):
            made[region] = Host.create(region.split("-")[0])
        yield made
    finally:
        for host in made.values():
            host.destroy()


def _through(url: str, host: Host) -> str:
    """`url` with its loopback address replaced by the host's link to the root namespace."""
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(parts.hostname, host.gateway_ip)))


def _host_env(settings: Settings, host: Host, kms: KmsService) -> dict[str, str]:
    env = gateway_env(settings)
    env["GATEWAY_BROKER_URL"] = _through(BROKER_URL, host)
    env["GATEWAY_KMS_URL"] = _through(kms.url, host)
    if not settings.resolved_database_url.startswith("sqlite"):
        env["GATEWAY_DATABASE_URL"] = _through(settings.resolved_database_url, host)
    for port in {5672, kms.port, urlsplit(settings.resolved_database_url).port or 5432}:
        host.forward(port)
    return env


def _ingest(ctx, dataset, photos) -> list[str]:
    ids = []
    for photo in photos:
        with transaction(ctx.engine) as s:
            out = ingest_upload(
                s, ctx, dataset, Upload(photo.name, photo.read_bytes()), actor=Actor("cli", "t")
            )
        ids.append(out.asset_id)
    return ids


def _jobs(ctx) -> dict[str, Job]:
    with transaction(ctx.engine) as s:
        return {j.asset_id: j for j in s.exec(select(Job).order_by(col(Job.id))).all()}


def _running_on(ctx, pid: int) -> Job | None:
    mine = f":{pid}:"
    running = [j for j in _jobs(ctx).values() if j.state == JobState.RUNNING]
    return next((j for j in running if mine in (j.worker or "")), None)


def test_each_region_host_takes_only_its_regions_jobs(settings, kms_service, hosts, tmp_path):
    base = with_broker(
        settings,
        worker_regions="eu-de,us-east",
        job_lease_seconds=3.0,
        job_heartbeat_seconds=0.5,
        relay_interval_seconds=0.5,
        relay_republish_seconds=2.0,
    )
    prefix = base.broker_queue_prefix
    eu = region_ctx(base, kms_service, "eu-de", utc_now)
    us = region_ctx(base, kms_service, "us-east", utc_now)
    try:
        spec = DatasetSpec.model_validate(DATASET_SPEC)
        with transaction(eu.engine) as s:
            eu_data = create_dataset(s, eu, spec, actor=Actor("cli", "t"))
        with transaction(us.engine) as s:  # created by the US region: its key is American
            virginia = spec.model_copy(update={"name": "virginia"})
            us_data = create_dataset(s, us, virginia, actor=Actor("cli", "t"))
        bind(us, us_data, policy_doc(residency=US_ONLY))
        eu_ids, us_ids = _ingest(eu, eu_data, DASHCAM), _ingest(us, us_data, SMALL)

        publisher = CeleryPublisher(celery_app(eu.settings))
        assert dispatch(eu, publisher) == 4
        jobs = _jobs(eu)
        assert {jobs[a].queue for a in eu_ids} == {f"{prefix}redact.eu-de"}
        assert {jobs[a].queue for a in us_ids} == {f"{prefix}redact.us-east"}
        rogue = jobs[eu_ids[0]]
        publisher.publish(rogue.id, queue=f"{prefix}redact.us-east")  # an eu job, wrong queue

        eu_host, us_host = hosts["eu-de"], hosts["us-east"]
        eu_env = _host_env(eu.settings, eu_host, kms_service)
        us_env = _host_env(us.settings, us_host, kms_service)
        assert not us_host.reaches("127.0.0.1", 5672)  # a host of its own: no shared loopback
        assert us_host.reaches(us_host.gateway_ip, 5672)

        def settled(ids: list[str]) -> bool:
            now = _jobs(eu)
            return all(now[a].state in (JobState.DONE, JobState.FAILED) for a in ids)

        with process(
            ["worker", "--port", "0"], env=us_env, log=tmp_path / "us.log", prefix=us_host.prefix
        ):
            wait_for(lambda: settled(us_ids), timeout=120, what="the us host's jobs")
            wait_for(
                lambda: lineage(eu, "residency.blocked"),
                timeout=60,
                what="the us host to refuse the eu job handed to it",
            )
            assert not settled(eu_ids)  # nothing of the eu dataset was taken in the US
            probe = subprocess.run(  # the us host's own credential, over its own link
                [*us_host.prefix, sys.executable, "-c", UNWRAP_PROBE, eu_data.id],
                env=us_env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert probe.stdout.startswith("refused"), probe.stdout + probe.stderr
            assert any(
                r["caller"] == "us-east" and ":eu-de:" in str(r["key_id"])
                for r in kms_service.refused()
            ), kms_service.refused()
            log_a = tmp_path / "eu-a.log"
            with process(
                ["worker", "--port", "0"], env=eu_env, log=log_a, prefix=eu_host.prefix
            ) as a:
                victim = wait_for(
                    lambda: _running_on(eu, a.pid), timeout=120, what="the eu host's first job"
                )
                kill_group(a, signal.SIGKILL)  # the eu host's worker, mid-image
            assert _jobs(eu)[victim.asset_id].state == JobState.RUNNING  # died holding it
            with (
                process(
                    ["worker", "--port", "0"],
                    env=eu_env,
                    log=tmp_path / "eu-b.log",
                    prefix=eu_host.prefix,
                ),
                process(  # the gateway-wide credential only: it relays, it opens no key
                    ["scheduler"],
                    env=gateway_env(gateway_wide_settings(base, kms_service)),
                    log=tmp_path / "sched.log",
                ),
            ):
                wait_for(lambda: settled(eu_ids), timeout=120, what="the eu host's jobs")

        jobs = _jobs(eu)
        for ids, region in ((eu_ids, "eu-de"), (us_ids, "us-east")):
            for asset_id in ids:
                assert jobs[asset_id].state == JobState.DONE
                assert jobs[asset_id].worker.endswith(f":{region}"), jobs[asset_id].worker
                expected = 2 if asset_id == victim.asset_id else 1  # once more after the kill
                assert jobs[asset_id].attempts == expected
        with transaction(eu.engine) as s:
            assert {a.state for a in s.exec(select(Asset)).all()} == {AssetState.RELEASED}
        released = [(r["entity"]["id"], r["region"]) for r in lineage(eu, "asset.released")]
        assert sorted(released) == sorted(
            [(a, "eu-de") for a in eu_ids] + [(a, "us-east") for a in us_ids]
        )  # each asset released once, by a worker of its region
        [blocked] = lineage(eu, "residency.blocked")
        assert blocked["entity"]["id"] == eu_ids[0]
        assert blocked["actor"] == {"kind": "system", "id": "worker:us-east"}
    finally:
        eu.close()
        us.close()
        delete_queues(prefix)
