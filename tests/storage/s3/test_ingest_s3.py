"""`ingest s3://bucket/prefix` against moto's S3 server: interrupted, then resumed, without
reading again what was taken; the same typed outcomes as the folder import; the command line
with its progress bar and one-line errors, with the gateway's own blobs in a bucket too."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import select

from gateway.core.db import transaction
from gateway.core.errors import InvalidRequest, NotFound
from gateway.core.models import Asset, AssetState, IngestedObject
from gateway.ingest_s3 import S3Source, ingest_prefix
from tests.gateway.bad_inputs import good_jpeg
from tests.storage.s3.conftest import admin_client, bucket_entry, bucket_keys

pytestmark = pytest.mark.db


class Interrupted(Exception):
    """Stands for Ctrl-C or a lost connection between two objects."""


@pytest.fixture
def source(moto_endpoint: str) -> tuple[str, S3Source]:
    """A source bucket: five photos, a text file, a hidden object, a folder marker, and an
    object outside the prefix."""
    client = admin_client(moto_endpoint)
    bucket = f"camera-drop-{os.urandom(4).hex()}"
    client.create_bucket(Bucket=bucket)
    for i in range(5):
        client.put_object(Bucket=bucket, Key=f"incoming/day1/img{i}.jpg", Body=good_jpeg(i))
    client.put_object(Bucket=bucket, Key="incoming/day1/notes.txt", Body=b"not an image")
    client.put_object(Bucket=bucket, Key="incoming/.DS_Store", Body=b"\0")
    client.put_object(Bucket=bucket, Key="incoming/day2/", Body=b"")
    client.put_object(Bucket=bucket, Key="elsewhere/img.jpg", Body=good_jpeg(99))
    return bucket, S3Source.parse(f"s3://{bucket}/incoming/")


def _counting_client(endpoint: str) -> tuple[object, list[str]]:
    client = admin_client(endpoint)
    reads: list[str] = []
    client.meta.events.register(
        "before-call.s3.GetObject", lambda params, **_: reads.append(params["url_path"])
    )
    return client, reads


def test_an_interrupted_import_resumes_without_reading_again(
    ctx, dataset, moto_endpoint, source
) -> None:
    _, prefix = source
    client, reads = _counting_client(moto_endpoint)

    def stop_after_three(done: int, total: int) -> None:
        assert total == 6  # five photos and the text file; hidden and marker left out
        if done == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        ingest_prefix(
            ctx, prefix, client=client, dataset_ref=dataset.name, progress=stop_after_three
        )
    assert len(reads) == 3
    with transaction(ctx.engine) as s:
        assert len(s.exec(select(Asset)).all()) == 3
        assert len(s.exec(select(IngestedObject)).all()) == 3

    seen: list[tuple[int, int]] = []
    resumed = ingest_prefix(
        ctx,
        prefix,
        client=client,
        dataset_ref=dataset.name,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert len(reads) == 6  # only the three not yet taken were downloaded
    assert (resumed.resumed, resumed.new, resumed.duplicates) == (3, 2, 0)
    assert [o.error["code"] for o in resumed.rejected if o.error] == ["unsupported-format"]
    assert {s.path: s.reason for s in resumed.skipped} == {".DS_Store": "hidden object"}
    assert seen[-1] == (6, 6)
    assert "3 taken by an earlier run" in resumed.describe()
    with transaction(ctx.engine) as s:
        assets = s.exec(select(Asset)).all()
        assert len(assets) == 6
        assert sorted(a.state for a in assets).count(AssetState.REJECTED) == 1
        assert {a.original_blob.split("/", 2)[1] for a in assets if a.original_blob} == {"eu-de"}
        stored = s.exec(select(IngestedObject.source_digest)).all()
    assert not any("img" in d for d in stored)  # keyed digests, no object names

    again = ingest_prefix(ctx, prefix, client=client, dataset_ref=dataset.name)
    assert (again.resumed, again.new, len(reads)) == (6, 0, 6)


def test_a_replaced_object_is_new_content_and_a_copy_is_a_duplicate(
    ctx, dataset, moto_endpoint, source
) -> None:
    bucket, prefix = source
    client = admin_client(moto_endpoint)
    ingest_prefix(ctx, prefix, client=client, dataset_ref=dataset.name)
    client.put_object(Bucket=bucket, Key="incoming/day1/img0.jpg", Body=good_jpeg(50))
    client.put_object(Bucket=bucket, Key="incoming/day3/copy.jpg", Body=good_jpeg(1))
    summary = ingest_prefix(ctx, prefix, client=client, dataset_ref=dataset.name)
    assert (summary.new, summary.duplicates, summary.resumed) == (1, 1, 5)


def test_source_errors_are_typed(ctx, dataset, moto_endpoint) -> None:
    client = admin_client(moto_endpoint)
    with pytest.raises(InvalidRequest):
        S3Source.parse("https://bucket/prefix")
    with pytest.raises(NotFound):
        ingest_prefix(
            ctx, S3Source("no-such-bucket-here", ""), client=client, dataset_ref=dataset.name
        )
    with pytest.raises(NotFound):
        ingest_prefix(ctx, S3Source("any-bucket", ""), client=client, dataset_ref="no-dataset")


@pytest.mark.timeout(120)
def test_the_command_imports_a_prefix_into_buckets_and_resumes(
    tmp_path: Path, moto_endpoint, buckets, source
) -> None:
    bucket, _ = source
    database_url = f"sqlite:///{tmp_path / 'gateway.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "AWS_"))}
    env |= {
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "GATEWAY_STORAGE_BACKEND": "s3",
        "GATEWAY_S3_BUCKETS": json.dumps(
            {"eu-de": bucket_entry(moto_endpoint, "eu-de", buckets["eu-de"])}
        ),
        "AWS_ACCESS_KEY_ID": "source-reader",  # the source's credentials: boto3's own chain
        "AWS_SECRET_ACCESS_KEY": "source-reader",
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "gateway", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False)

    assert cli("init").returncode == 0
    made = cli(
        "datasets", "create", "street", "--purpose", "Pedestrian detection research data.",
        "--controller", "Lab", "--legal-basis", "legitimate_interests", "--subjects",
        "passers-by", "--data-category", "facial images", "--label", "person:box",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    s3 = ["--endpoint-url", moto_endpoint, "--path-style", "--no-process"]
    first = cli("ingest", f"s3://{bucket}/incoming", "--dataset", "street", *s3)
    assert first.returncode == 2, first.stderr  # the text file was refused, as a folder's
    assert "imported 5 new, 0 already present, 1 rejected, 1 skipped" in first.stdout
    assert "importing" in first.stderr  # the progress bar
    assert len(bucket_keys(moto_endpoint, buckets["eu-de"])) == 5  # sealed originals
    second = cli("ingest", f"s3://{bucket}/incoming", "--dataset", "street", *s3)
    assert "imported 0 new, 0 already present, 0 rejected, 1 skipped" in second.stdout
    assert "6 taken by an earlier run (not read again)" in second.stdout
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM asset")).scalar_one() == 6
    engine.dispose()
    missing = cli("ingest", "s3://no-such-bucket-here/x", "--dataset", "street", *s3)
    assert missing.returncode == 3
    assert "[not-found]" in missing.stderr and "Traceback" not in missing.stderr
    not_a_folder = cli("ingest", str(tmp_path / "nothing"), "--dataset", "street")
    assert not_a_folder.returncode == 2 and "not a folder" in not_a_folder.stderr
