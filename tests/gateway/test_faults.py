"""Fault tests: with no restart of the service, queued work completes after each fault,
nothing is lost or duplicated, and /health/ready is false while the service cannot work and
true after. A redaction worker process killed (SIGKILL) idle and mid-image; a full disk (a
real, tiny tmpfs); the database down for 30 s (PostgreSQL behind a proxy the test cuts).

The service is the real app with its supervisor, the real isolated redaction engine in a
worker process, real storage and database; the detectors are the fault detectors of
`tests.gateway.fault_detectors` (so the test knows when an image is inside the process)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from gateway.core.models import JobState
from tests.gateway.bad_inputs import good_jpeg
from tests.gateway.faults import TcpProxy, running_service, settings_for, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
POSTGRES_URL = os.environ.get("GATEWAY_TEST_POSTGRES_URL")


def assert_each_released_once(service, asset_ids: list[str]) -> None:
    for asset_id in asset_ids:
        assert service.state(asset_id) == "released", service.actions(asset_id)
        actions = service.actions(asset_id)
        assert actions.count("asset.released") == 1 and "asset.quarantined" not in actions
    jobs = service.jobs()
    assert sorted(j.asset_id for j in jobs) == sorted(asset_ids)  # one job each, none lost
    assert {j.state for j in jobs} == {JobState.DONE}


def hold_next_image(service) -> None:
    (service.trap / "hang-once").touch()


def image_inside_worker(service) -> bool:
    return (service.trap / "entered").exists()


def let_image_go(service) -> None:
    (service.trap / "entered").unlink()


def test_a_killed_redaction_worker_is_replaced_without_costing_an_image(tmp_path) -> None:
    with running_service(settings_for(tmp_path), tmp_path / "trap") as service:
        first = service.accepted(good_jpeg(1))
        wait_for(lambda: service.state(first) == "released", what="the first image")
        assert service.ready()

        (pid,) = service.redaction_pids()
        os.kill(pid, signal.SIGKILL)  # killed while idle
        wait_for(lambda: not service.ready(), what="readiness to notice the dead worker")
        second = service.accepted(good_jpeg(2))  # the next, innocent image
        wait_for(lambda: service.state(second) == "released", what="the next image")
        assert service.redaction_pids() != [pid]
        wait_for(service.ready, what="ready again")

        (pid,) = service.redaction_pids()
        os.kill(pid, signal.SIGKILL)  # killed while idle, and no image comes
        wait_for(lambda: not service.ready(), what="readiness to notice again")
        service.client.app.state.supervisor.wake()  # the idle worker's next tick replaces it
        wait_for(service.ready, what="ready with a fresh worker and no image")
        assert service.redaction_pids() not in ([pid], [])

        hold_next_image(service)
        third = service.accepted(good_jpeg(3))
        wait_for(lambda: image_inside_worker(service), what="the image inside the worker")
        (pid,) = service.redaction_pids()
        os.kill(pid, signal.SIGKILL)  # killed mid-image: that job spends one attempt
        wait_for(lambda: service.state(third) == "released", what="the retried image")
        wait_for(service.ready, what="ready after the crash")

        assert_each_released_once(service, [first, second, third])
        attempts = {j.asset_id: j.attempts for j in service.jobs()}
        assert attempts == {first: 1, second: 1, third: 2}
        metrics = service.client.get("/metrics").text
        assert 'gateway_jobs_total{outcome="retried",reason="worker-crashed"}' in metrics
        for stage in ("decode", "faces", "leak_check", "encode", "total"):
            assert f'gateway_redaction_stage_seconds_count{{stage="{stage}"}}' in metrics


def _can_mount_tmpfs(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def _fill(path: Path) -> Path:
    filler = path / "filler"
    with filler.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as exc:
            assert exc.errno == 28  # ENOSPC: the disk is full for real
    return filler


def test_a_full_disk_stops_the_work_and_it_resumes_when_space_returns(tmp_path) -> None:
    store = tmp_path / "store"
    if not _can_mount_tmpfs(store):
        pytest.skip("cannot mount a tmpfs here (needs CAP_SYS_ADMIN)")
    try:
        settings = settings_for(tmp_path, storage_dir=store)
        with running_service(settings, tmp_path / "trap") as service:
            first = service.accepted(good_jpeg(1))
            wait_for(lambda: service.state(first) == "released", what="the first image")

            hold_next_image(service)
            second = service.accepted(good_jpeg(2))
            wait_for(lambda: image_inside_worker(service), what="the image inside the worker")
            filler = _fill(store)  # the disk fills up while the image is being redacted
            let_image_go(service)  # its redacted copy cannot be written now
            wait_for(lambda: not service.ready(), what="readiness to say the disk is full")
            refused = service.upload(good_jpeg(3))
            assert refused.status_code == 503, refused.text
            assert refused.json()["code"] == "service-unavailable"
            wait_for(lambda: service.jobs()[1].deferrals >= 1, what="the attempt to be given back")
            assert service.jobs()[1].state == JobState.QUEUED
            assert not service.ready()

            filler.unlink()  # space again
            wait_for(service.ready, what="ready once there is space")
            wait_for(lambda: service.state(second) == "released", what="the held image")
            third = service.accepted(good_jpeg(3))
            wait_for(lambda: service.state(third) == "released", what="a new image")
            assert_each_released_once(service, [first, second, third])
    finally:
        subprocess.run(["umount", "-l", str(store)], check=False)


@pytest.fixture
def postgres_behind_proxy():
    if not POSTGRES_URL:
        pytest.skip("set GATEWAY_TEST_POSTGRES_URL to cut a database connection")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    host_port = POSTGRES_URL.split("@", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    proxy = TcpProxy((host, int(port or 5432)))
    proxy.start()
    url = POSTGRES_URL.replace(host_port, f"127.0.0.1:{proxy.port}")
    sep = "&" if "?" in url else "?"
    yield proxy, f"{url}{sep}options=-csearch_path%3D{schema}&connect_timeout=3"
    proxy.stop()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def test_the_database_down_for_30_seconds(tmp_path, postgres_behind_proxy) -> None:
    proxy, url = postgres_behind_proxy
    settings = settings_for(tmp_path, database_url=url)
    with running_service(settings, tmp_path / "trap") as service:
        first = service.accepted(good_jpeg(1))
        wait_for(lambda: service.state(first) == "released", what="the first image")

        hold_next_image(service)
        second = service.accepted(good_jpeg(2))
        wait_for(lambda: image_inside_worker(service), what="the image inside the worker")
        proxy.stop()  # the database goes away mid-image
        down_at = time.monotonic()
        let_image_go(service)  # its result cannot be recorded now
        wait_for(lambda: not service.ready(), what="readiness to notice")
        refused = service.upload(good_jpeg(3))
        assert refused.status_code == 503 and refused.json()["code"] == "service-unavailable"
        while time.monotonic() - down_at < 30:  # the outage lasts 30 s; never ready meanwhile
            assert not service.ready()
            time.sleep(0.5)

        proxy.start()
        wait_for(service.ready, deadline=60, what="ready once the database is back")
        wait_for(lambda: service.state(second) == "released", what="the image from before")
        third = service.accepted(good_jpeg(3))
        wait_for(lambda: service.state(third) == "released", what="a new image")
        assert_each_released_once(service, [first, second, third])
        held = service.jobs()[1]
        assert held.attempts - held.deferrals <= 2  # the lost attempt counts once at most
