"""Two worker hosts of two regions (network namespaces) against one broker and one database:
each takes only its region's jobs; a job sent to the wrong region's queue is refused there
and recorded; the eu host's worker killed with SIGKILL mid-image loses and duplicates
nothing. The hosts reach PostgreSQL, RabbitMQ and the key service only through their veth
link (socat in the root namespace), as separate machines would."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlmodel import col, select

from gateway.clock import utc_now
from gateway.datasets import DatasetSpec, create_dataset
from gateway.db import transaction
from gateway.ingest import Upload, ingest_upload
from gateway.lineage import Actor
from gateway.models import Asset, AssetState, Job, JobState
from gateway.scaleout.broker import celery_app
from gateway.scaleout.relay import CeleryPublisher, dispatch
from gateway.settings import Settings
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
from tests.scaleout.kms_fixtures import KmsService, region_ctx
from tests.scaleout.netns import Host, netns_or_skip

pytestmark = [pytest.mark.db, pytest.mark.integration, pytest.mark.timeout(240)]
SMALL = sorted(PHOTOS.glob("masks_*.jpg"))[:2]
DASHCAM = sorted(PHOTOS.glob("dashcam_*.jpg"))[:2]  # seconds each: time to kill mid-image
SWISS = {
    "processing_regions": ["CH"],
    "storage_regions": ["CH"],
    "annotation_regions": ["CH"],
    "adequacy_counts": True,  # Switzerland: an adequacy decision for EU data
}


@pytest.fixture
def hosts() -> Iterator[dict[str, Host]]:
    netns_or_skip()
    made: dict[str, Host] = {}
    try:
        for region in ("eu-de", "ch-zh"):
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
        worker_regions="eu-de,ch-zh",
        job_lease_seconds=3.0,
        job_heartbeat_seconds=0.5,
        relay_interval_seconds=0.5,
        relay_republish_seconds=2.0,
    )
    prefix = base.broker_queue_prefix
    eu = region_ctx(base, kms_service, "eu-de", utc_now)
    ch = region_ctx(base, kms_service, "ch-zh", utc_now)
    try:
        spec = DatasetSpec.model_validate(DATASET_SPEC)
        with transaction(eu.engine) as s:
            eu_data = create_dataset(s, eu, spec, actor=Actor("cli", "t"))
        with transaction(ch.engine) as s:  # created by the Swiss region: its key is Swiss
            zurich = spec.model_copy(update={"name": "zurich"})
            ch_data = create_dataset(s, ch, zurich, actor=Actor("cli", "t"))
        bind(ch, ch_data, policy_doc(residency=SWISS))
        eu_ids, ch_ids = _ingest(eu, eu_data, DASHCAM), _ingest(ch, ch_data, SMALL)

        publisher = CeleryPublisher(celery_app(eu.settings))
        assert dispatch(eu, publisher) == 4
        jobs = _jobs(eu)
        assert {jobs[a].queue for a in eu_ids} == {f"{prefix}redact.eu-de"}
        assert {jobs[a].queue for a in ch_ids} == {f"{prefix}redact.ch-zh"}
        rogue = jobs[eu_ids[0]]
        publisher.publish(rogue.id, queue=f"{prefix}redact.ch-zh")  # an eu job, wrong queue

        eu_host, ch_host = hosts["eu-de"], hosts["ch-zh"]
        eu_env = _host_env(eu.settings, eu_host, kms_service)
        ch_env = _host_env(ch.settings, ch_host, kms_service)
        assert not ch_host.reaches("127.0.0.1", 5672)  # a host of its own: no shared loopback
        assert ch_host.reaches(ch_host.gateway_ip, 5672)

        def settled(ids: list[str]) -> bool:
            now = _jobs(eu)
            return all(now[a].state in (JobState.DONE, JobState.FAILED) for a in ids)

        with process(
            ["worker", "--port", "0"], env=ch_env, log=tmp_path / "ch.log", prefix=ch_host.prefix
        ):
            wait_for(lambda: settled(ch_ids), timeout=120, what="the Swiss host's jobs")
            wait_for(
                lambda: lineage(eu, "residency.blocked"),
                timeout=60,
                what="the Swiss host to refuse the eu job handed to it",
            )
            assert not settled(eu_ids)  # nothing of the eu dataset was taken in Switzerland
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
                process(["scheduler"], env=gateway_env(eu.settings), log=tmp_path / "sched.log"),
            ):
                wait_for(lambda: settled(eu_ids), timeout=120, what="the eu host's jobs")

        jobs = _jobs(eu)
        for ids, region in ((eu_ids, "eu-de"), (ch_ids, "ch-zh")):
            for asset_id in ids:
                assert jobs[asset_id].state == JobState.DONE
                assert jobs[asset_id].worker.endswith(f":{region}"), jobs[asset_id].worker
                expected = 2 if asset_id == victim.asset_id else 1  # once more after the kill
                assert jobs[asset_id].attempts == expected
        with transaction(eu.engine) as s:
            assert {a.state for a in s.exec(select(Asset)).all()} == {AssetState.RELEASED}
        released = [(r["entity"]["id"], r["region"]) for r in lineage(eu, "asset.released")]
        assert sorted(released) == sorted(
            [(a, "eu-de") for a in eu_ids] + [(a, "ch-zh") for a in ch_ids]
        )  # each asset released once, by a worker of its region
        [blocked] = lineage(eu, "residency.blocked")
        assert blocked["entity"]["id"] == eu_ids[0]
        assert blocked["actor"] == {"kind": "system", "id": "worker:ch-zh"}
    finally:
        eu.close()
        ch.close()
        delete_queues(prefix)
