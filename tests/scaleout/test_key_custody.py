"""Per-region key custody through the (fake) key service: a process's credential is its
region; dataset keys are wrapped under the region's key and name it; a worker of another
region cannot unwrap them, fails with a typed error, and the refusal is recorded."""

from __future__ import annotations

import pytest
from sqlmodel import select

from gateway.core import crypto
from gateway.core.db import transaction
from gateway.core.errors import KeyCustodyRefused
from gateway.core.keys import KeyPurpose
from gateway.core.models import Asset, DatasetKey, Job, JobState
from gateway.ingest import original_aad
from gateway.lineage import Action, Actor
from gateway.scaleout.routing import HELD, queue_for
from gateway.scaleout.tasks import WorkerRuntime, run_woken_job
from gateway.scaleout.worker import WorkerMisconfigured, worker_queues, worker_region
from tests.gateway.test_jobs import ingest
from tests.policy.helpers import bind, lineage, policy_doc
from tests.scaleout.kms_fixtures import region_ctx, region_dataset

pytestmark = [pytest.mark.db, pytest.mark.timeout(60)]
EEA_AND_CH = {"processing_regions": ["eea", "CH"], "adequacy_counts": True}


class NeverRedacts:
    """A worker that gets this far has been let through: the test fails on any call."""

    def redact(self, data: bytes):
        del data
        raise AssertionError("a refused worker must not reach the redactor")


def _other(settings, kms_service, clock, region: str):
    return region_ctx(settings, kms_service, region, clock)


def test_dataset_keys_are_wrapped_under_the_region_key_and_no_master_key_is_on_disk(
    eu,
    kms_service,
):
    dataset = region_dataset(eu)
    with transaction(eu.engine) as s:
        [row] = s.exec(select(DatasetKey).where(DatasetKey.dataset_id == dataset.id)).all()
    assert row.master_key_id == "kms:eu-de:1"  # names the region and key version
    assert eu.keys.master.key_id == "kms:gateway:1"  # gateway-wide secrets: not data keys
    assert not (eu.settings.data_dir / "master.key").exists()
    assert list(eu.settings.data_dir.rglob("*.key")) == []
    asset_id = ingest(eu, dataset)  # the eu process encrypts and can decrypt its originals
    with transaction(eu.engine) as s:
        asset = s.get(Asset, asset_id)
        key = eu.keys.dataset_key(s, dataset.id, version=asset.key_version)
    sealed = eu.store.get(asset.original_blob)
    assert crypto.unseal(
        sealed, key=key.subkey(KeyPurpose.AT_REST), aad=original_aad(asset_id, key)
    )


def test_a_us_worker_handed_an_eu_job_cannot_decrypt_the_original(
    eu,
    settings,
    kms_service,
    clock,
):
    dataset = region_dataset(eu)
    asset_id = ingest(eu, dataset)
    us = _other(settings, kms_service, clock, "us-east")
    try:
        # the key service refuses the us credential the eu key: a typed error, audited
        with transaction(us.engine) as s, pytest.raises(KeyCustodyRefused):
            us.keys.dataset_key(s, dataset.id)
        assert kms_service.refused()[-1] == {
            "operation": "unwrap",
            "key_id": "kms:eu-de:1",
            "caller": "us-east",
            "allowed": False,
        }
        # handed the job id, the us worker refuses before touching data, and records it
        with transaction(us.engine) as s:
            [job] = s.exec(select(Job)).all()
        rt = WorkerRuntime(us, "us-east", NeverRedacts(), "us-host:1:us-east")
        assert run_woken_job(rt, job.id) == "refused-residency"
        [blocked] = lineage(us, "residency.blocked")
        assert blocked["entity"]["id"] == asset_id
        assert blocked["actor"] == {"kind": "system", "id": "worker:us-east"}
        with transaction(us.engine) as s:
            untouched = s.get(Job, job.id)
        assert untouched.state == JobState.QUEUED and untouched.attempts == 0
    finally:
        us.close()


def test_residency_allows_but_the_key_is_another_regions_so_the_worker_refuses(
    eu,
    settings,
    kms_service,
    clock,
):
    dataset = region_dataset(eu)
    bind(eu, dataset, policy_doc(residency=EEA_AND_CH))  # processing in CH allowed too
    asset_id = ingest(eu, dataset)
    ch = _other(settings, kms_service, clock, "ch-zh")
    try:
        with transaction(ch.engine) as s:
            [job] = s.exec(select(Job)).all()
        rt = WorkerRuntime(ch, "ch-zh", NeverRedacts(), "ch-host:1:ch-zh")
        assert run_woken_job(rt, job.id) == "refused-key-custody"
        [refusal] = lineage(ch, Action.KEY_CUSTODY_REFUSED)
        assert refusal["entity"]["id"] == asset_id
        assert refusal["parameters"]["code"] == "key-custody-refused"
        assert refusal["parameters"]["wrapped_under"] == "kms:eu-de:1"
        with transaction(ch.engine) as s:
            assert s.get(Job, job.id).attempts == 0  # never claimed
            # routing knows it too: with both regions' workers, the job goes to eu-de's queue
            ch.settings = ch.settings.model_copy(update={"worker_regions": "ch-zh,eu-de"})
            assert queue_for(ch, s, job) == "redact.eu-de"
            ch.settings = ch.settings.model_copy(update={"worker_regions": "ch-zh"})
            assert queue_for(ch, s, job) == HELD
    finally:
        ch.close()


def test_a_workers_region_is_its_credentials_and_it_consumes_only_its_queue(
    eu,
):
    assert worker_region(eu, claimed=None) == "eu-de"
    assert worker_region(eu, claimed="eu-de") == "eu-de"
    with pytest.raises(KeyCustodyRefused):
        worker_region(eu, claimed="us-east")  # a flag cannot make it another region's worker
    assert worker_queues("eu-de", None) == ["redact.eu-de"]
    with pytest.raises(WorkerMisconfigured):
        worker_queues("eu-de", ["redact.eu-de", "redact.us-east"])


def test_shredding_rotates_the_region_key_and_retires_the_old_version_for_every_replica(
    eu, settings, kms_service, clock
):
    from gateway.core.errors import KeyUnavailable
    from gateway.pseudonymisation.custody import shred_dataset

    doomed, kept = region_dataset(eu, "doomed"), region_dataset(eu, "kept")
    ingest(eu, doomed)
    replica = _other(settings, kms_service, clock, "eu-de")  # a second eu replica, running
    ch = _other(settings, kms_service, clock, "ch-zh")
    try:
        with transaction(eu.engine) as s:
            [backup] = s.exec(select(DatasetKey).where(DatasetKey.dataset_id == doomed.id)).all()
            s.expunge(backup)  # what a database backup taken now would hold
        with pytest.raises(KeyCustodyRefused):  # only the key's region may shred it
            shred_dataset(ch, doomed.id, actor=Actor("cli", "t"), reason="wrong region")
        with transaction(eu.engine) as s:
            assert s.get(DatasetKey, backup.id).wrapped is not None  # nothing destroyed

        shred_dataset(eu, doomed.id, actor=Actor("cli", "t"), reason="project ended")

        aad = f"lpg/v1/dataset-key/{doomed.id}/v{backup.version}".encode()
        with pytest.raises(KeyUnavailable):  # the backup's row: its key version is retired
            replica.keys.unwrap(backup.wrapped, aad=aad, master_key_id=backup.master_key_id)
        with transaction(replica.engine) as s:  # the other dataset was re-wrapped, still opens
            [row] = s.exec(select(DatasetKey).where(DatasetKey.dataset_id == kept.id)).all()
            assert row.master_key_id == "kms:eu-de:2"
            replica.keys.dataset_key(s, kept.id)
        fresh = region_dataset(replica, "after")  # the replica wraps under the new version at once
        with transaction(replica.engine) as s:
            [row] = s.exec(select(DatasetKey).where(DatasetKey.dataset_id == fresh.id)).all()
        assert row.master_key_id == "kms:eu-de:2"
        [rotated] = lineage(eu, "master-key.rotated")
        assert rotated["entity"]["id"] == "kms:eu-de:2"
    finally:
        replica.close()
        ch.close()


def test_the_key_service_away_leaves_the_job_without_spending_an_attempt(eu, kms_service):
    dataset = region_dataset(eu)
    ingest(eu, dataset)
    with transaction(eu.engine) as s:
        [job] = s.exec(select(Job)).all()
    kms_service.server.shutdown()
    kms_service.server.server_close()  # the key service is unreachable now
    rt = WorkerRuntime(eu, "eu-de", NeverRedacts(), "eu-host:1:eu-de")
    assert run_woken_job(rt, job.id) == "key-unavailable"
    with transaction(eu.engine) as s:
        left = s.get(Job, job.id)
    assert left.state == JobState.QUEUED and left.attempts == 0
