"""Lineage ledger throughput: append (records/s, sequenced, hash-chained, Merkle frontier kept,
then covered by a signed checkpoint) on SQLite and PostgreSQL, single and 8 concurrent writers;
offline bundle verification time from 10k to 1M records.

    .venv/bin/python -m bench.lineage [--postgres URL] [--append N] [--sizes 10000,100000]

Writes bench/results/lineage-<date>.json and .md (machine, date, commit, figures).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text

from gateway.core.context import GatewayContext
from gateway.core.db import make_engine, migrate, transaction
from gateway.core.keys import KeyProvider, LocalMasterKey
from gateway.core.settings import Settings
from gateway.core.storage import LocalBlobStore
from gateway.lineage import Actor, append
from gateway.lineage.checkpoints import create_checkpoint
from gateway.lineage.format.bundle import BUNDLE_SCHEMA, MANIFEST_SCHEMA, entries_digest
from gateway.lineage.format.canonical import GENESIS_HASH, SCHEMA, canonical_json, chain_hash
from gateway.lineage.format.checkpoint import checkpoint_body
from gateway.lineage.format.keys import b64, fingerprint, key_id_for, public_raw
from gateway.lineage.format.merkle import Frontier, leaf_hash
from gateway.lineage.format.verify import Anchor, verify_bundle
from gateway.lineage.ledger import drain

RESULTS = Path(__file__).parent / "results"


def _ctx(url: str, data: Path) -> GatewayContext:
    key = base64.b64encode(os.urandom(32)).decode()
    settings = Settings(data_dir=data, database_url=url, master_key=key, region="eu-de")
    engine = make_engine(url)
    migrate(engine)
    master = LocalMasterKey(base64.b64decode(key))
    return GatewayContext(settings, engine, KeyProvider(master), LocalBlobStore(data / "s"))


def _append_batch(ctx: GatewayContext, writer: int, start: int, count: int) -> None:
    with transaction(ctx.engine) as s:
        for i in range(start, start + count):
            append(
                s,
                action="asset.released",
                entity_type="asset",
                entity_id=str(uuid.uuid4()),
                actor=Actor("system", f"worker-{writer}"),
                now=ctx.clock(),
                region="eu-de",
                dataset_id="00000000-0000-0000-0000-000000000001",
                inputs={"original_keyed_digest": f"{i:064x}"},
                outputs={"redacted_sha256": f"{i + 1:064x}"},
                parameters={"detector": "centerface/1.0", "threshold_milli": 350, "faces": 2},
            )


def bench_append(ctx: GatewayContext, *, records: int, writers: int, per_tx: int) -> dict[str, Any]:
    each = records // writers

    def work(w: int) -> None:
        for start in range(0, each, per_tx):
            _append_batch(ctx, w, start, min(per_tx, each - start))

    t0, cpu0 = time.perf_counter(), time.process_time()
    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    drain(ctx.engine)
    with transaction(ctx.engine) as s:
        cp = create_checkpoint(ctx, s)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "writers": writers,
        "records": each * writers,
        "records_per_transaction": per_tx,
        "seconds": round(elapsed, 3),
        "records_per_s": int(each * writers / elapsed),
        "records_per_cpu_s": int(each * writers / cpu),
        "tree_size": cp.tree_size,
    }


def synthetic_bundle(path: Path, n: int, key: Ed25519PrivateKey, *, every: int = 100_000) -> None:
    """A complete bundle of n records built with the ledger's own hashing and signing code."""
    pub = public_raw(key.public_key())
    kid = key_id_for(pub)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    frontier, prev, entries, cps = Frontier(), GENESIS_HASH, [], []
    with path.open("w") as out:
        out.write(
            json.dumps(
                {
                    "kind": "header",
                    "schema": BUNDLE_SCHEMA,
                    "exported_at": "x",
                    "complete": True,
                    "filter": {},
                    "tree_size": n,
                }
            )
            + "\n"
        )
        out.write(
            json.dumps(
                {
                    "kind": "key",
                    "key_id": kid,
                    "alg": "Ed25519",
                    "public_key": b64(pub),
                    "fingerprint": fingerprint(pub),
                    "created_at": "x",
                    "retired_at": None,
                    "previous_key_id": None,
                    "handover": None,
                    "handover_old_signature": None,
                    "handover_new_signature": None,
                }
            )
            + "\n"
        )
        records = path.with_suffix(".records")
        with records.open("w") as rec_out:
            for seq in range(1, n + 1):
                payload = canonical_json(
                    {
                        "schema": SCHEMA,
                        "seq": seq,
                        "prev": prev,
                        "record_id": str(uuid.uuid4()),
                        "time": (t0 + timedelta(microseconds=seq)).isoformat(),
                        "actor": {"kind": "system", "id": "worker-1"},
                        "action": "asset.released",
                        "entity": {"type": "asset", "id": str(uuid.uuid4())},
                        "dataset": "00000000-0000-0000-0000-000000000001",
                        "region": "eu-de",
                        "inputs": {"original_keyed_digest": f"{seq:064x}"},
                        "outputs": {"redacted_sha256": f"{seq + 1:064x}"},
                        "parameters": {"detector": "centerface/1.0", "threshold_milli": 350},
                    }
                ).decode()
                prev = chain_hash(prev, payload.encode())
                frontier.append(leaf_hash(bytes.fromhex(prev)))
                entries.append([seq, prev])
                rec_out.write(
                    json.dumps(
                        {"kind": "record", "seq": seq, "record_hash": prev, "payload": payload},
                        separators=(",", ":"),
                    )
                    + "\n"
                )
                if seq % every == 0 or seq == n:
                    body = checkpoint_body(
                        tree_size=seq,
                        root_hash=frontier.root().hex(),
                        chain_head=prev,
                        time=t0,
                        key_id=kid,
                    )
                    msg = canonical_json(body)
                    cps.append(
                        {
                            "kind": "checkpoint",
                            "tree_size": seq,
                            "body": msg.decode(),
                            "key_id": kid,
                            "signature": b64(key.sign(msg)),
                        }
                    )
        for cp in cps:
            out.write(json.dumps(cp) + "\n")
        with records.open() as rec_in:
            for line in rec_in:
                out.write(line)
        records.unlink()
        manifest = {
            "schema": MANIFEST_SCHEMA,
            "exported_at": "x",
            "complete": True,
            "filter": {},
            "tree_size": n,
            "root_hash": frontier.root().hex(),
            "count": n,
            "entries_sha256": entries_digest(entries),
        }
        sig = {
            "key_id": kid,
            "alg": "Ed25519",
            "signature": b64(key.sign(canonical_json(manifest))),
        }
        out.write(
            json.dumps(
                {"kind": "manifest", "body": manifest, "signature": sig, "entries": entries},
                separators=(",", ":"),
            )
            + "\n"
        )


def bench_verify(sizes: list[int], work: Path) -> list[dict[str, Any]]:
    key = Ed25519PrivateKey.generate()
    anchor = Anchor(fingerprints=[fingerprint(public_raw(key.public_key()))])
    results = []
    for n in sizes:
        path = work / f"bundle-{n}.jsonl"
        synthetic_bundle(path, n, key)
        t0 = time.perf_counter()
        report = verify_bundle(path, anchor=anchor)
        elapsed = time.perf_counter() - t0
        if report.records != n:
            raise SystemExit(f"verified {report.records} records, expected {n}")
        results.append(
            {
                "records": n,
                "bundle_mb": round(path.stat().st_size / 1e6, 1),
                "checkpoints": report.checkpoints,
                "verify_seconds": round(elapsed, 2),
                "records_per_s": int(n / elapsed),
            }
        )
        print(results[-1])
        path.unlink()
    return results


def _commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return out.stdout.strip()


def _pg_url(base: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with create_engine(base).begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", schema


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--postgres", default=os.environ.get("GATEWAY_TEST_POSTGRES_URL"))
    ap.add_argument("--append", type=int, default=20_000)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    args = ap.parse_args()
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "append": [],
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        backends = [("sqlite", f"sqlite:///{work / 'g.db'}")]
        cleanup: list[str] = []
        if args.postgres:
            url, schema = _pg_url(args.postgres)
            backends.append(("postgresql", url))
            cleanup.append(schema)
        for name, url in backends:
            for writers, per_tx in ((1, 100), (1, 1000), (8, 100), (8, 1)):
                ctx = _ctx(url, work / f"{name}-{writers}-{per_tx}")
                n = args.append if per_tx > 1 else args.append // 4
                row = {
                    "backend": name,
                    **bench_append(ctx, records=n, writers=writers, per_tx=per_tx),
                }
                print(row)
                result["append"].append(row)
                ctx.close()
                if name == "sqlite":
                    (work / "g.db").unlink()
                    for suffix in ("-wal", "-shm"):
                        Path(f"{work / 'g.db'}{suffix}").unlink(missing_ok=True)
                else:
                    with create_engine(args.postgres).begin() as conn:
                        for schema in cleanup:
                            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                    url, schema = _pg_url(args.postgres)
                    cleanup = [schema]
        result["verify"] = bench_verify([int(x) for x in args.sizes.split(",")], work)
        if args.postgres:
            with create_engine(args.postgres).begin() as conn:
                for schema in cleanup:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"lineage-{result['date'][:10]}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(_markdown(result))
    print(f"wrote {stem}.json and .md")


def _markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# Lineage bench {r['date']} (commit {r['commit']})",
        "",
        f"Machine: {r['machine']}. Load average (1, 5, 15 min) at start "
        f"{r.get('load_average_at_start')}, at end {r.get('load_average_at_end')}: other work on "
        "the machine slows the wall-clock figures; records per CPU-second is this process's cost.",
        "",
        "## Append (sequenced, chained, Merkle frontier, final signed checkpoint)",
        "",
        "| backend | writers | records/tx | records | s | records/s (wall) | records per CPU-s |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in r["append"]:
        lines.append(
            f"| {a['backend']} | {a['writers']} | {a['records_per_transaction']} | "
            f"{a['records']} | {a['seconds']} | {a['records_per_s']} | {a['records_per_cpu_s']} |"
        )
    lines += [
        "",
        "## Offline bundle verification (chain walk, all checkpoint roots, signatures)",
        "",
        "| records | bundle MB | checkpoints | s | records/s |",
        "|---|---|---|---|---|",
    ]
    for v in r["verify"]:
        lines.append(
            f"| {v['records']} | {v['bundle_mb']} | {v['checkpoints']} | "
            f"{v['verify_seconds']} | {v['records_per_s']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
