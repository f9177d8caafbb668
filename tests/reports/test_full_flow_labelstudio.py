"""The issue's "Must show": a report on a dataset that went through the whole flow against the
REAL Label Studio. Photos are ingested and redacted by the real engine, synced to a real Label
Studio destination, annotated there by two Label Studio users (the second one made through
Label Studio's own users API, its token read with Label Studio's CLI), the annotations arrive
through the webhook (and a pull reconciles), one annotator raises the privacy flag, retention
deletes the originals, an erasure request removes a subject's task from Label Studio; then the
report (JSON and PDF) is generated and every section's figures are recomputed from the
database here, agreement included, by code independent of gateway/reports."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from hashlib import sha256
from itertools import permutations
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from gateway.core.context import GatewayContext
from gateway.core.db import transaction
from gateway.core.errors import ResidencyViolation
from gateway.core.models import (
    Asset,
    AssetState,
    AssetSync,
    Dataset,
    Destination,
    Detection,
    LineageHead,
    LineageRecord,
    SyncState,
)
from gateway.datasets import DatasetSpec, create_dataset
from gateway.labelstudio.annotations import pull_annotations
from gateway.labelstudio.export import ExportFormat, export_annotations
from gateway.labelstudio.server import VENV, LocalLabelStudio
from gateway.labelstudio.sync import sync_dataset
from gateway.labelstudio.tables import Annotation, Incident
from gateway.lineage import Actor
from gateway.lineage.tables import LineageSigningKey
from gateway.policy.erasure import request_erasure
from gateway.policy.retention import DueKind, run_retention
from gateway.policy.tables import ErasureRequest
from gateway.pseudonymisation.policy import PseudonymField
from gateway.pseudonymisation.tables import VaultEntry
from gateway.pseudonymisation.task_meta import identifiers, private_metadata
from gateway.reports.build import gateway_public_keys, generate_dataset_report, verify_report
from gateway.reports.render import ReportFormat, render
from tests.conftest import DATASET_SPEC
from tests.labelstudio.fixtures import ADMIN, FAST_RETRY, add_destination
from tests.labelstudio.helpers import lineage, project_tasks

pytestmark = [pytest.mark.db, pytest.mark.integration, pytest.mark.labelstudio]
OFFICER = Actor("cli", "officer")
ONTOLOGY = {
    "labels": [
        {"name": "person", "control": "box", "subgroup": "road user"},
        {"name": "vehicle", "control": "box", "subgroup": "road user"},
        {"name": "day", "control": "choice"},
        {"name": "night", "control": "choice"},
    ]
}
SECOND_ANNOTATOR = "second.annotator@gateway.local"


@pytest.fixture
def dataset(ctx: GatewayContext) -> Dataset:
    """Overrides the shared fixture (and so feeds `released`): an ontology with two box
    labels in one subgroup and image-level choices, so every agreement figure is defined."""
    spec = DatasetSpec.model_validate({**DATASET_SPEC, "ontology": ONTOLOGY})
    with transaction(ctx.engine) as s:
        return create_dataset(s, ctx, spec, actor=Actor("cli", "test"))


def box(label: str, x: float, y: float, w: float, h: float) -> dict[str, Any]:
    value = {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [label]}
    return {"type": "rectanglelabels", "from_name": "boxes", "to_name": "image", "value": value}


def choice(*values: str, name: str = "image_labels") -> dict[str, Any]:
    value = {"choices": list(values)}
    return {"type": "choices", "from_name": name, "to_name": "image", "value": value}


# what each Label Studio user draws, per task (A, B, C; D stays unannotated and is erased)
FIRST = {
    "A": [box("person", 10, 10, 20, 30), box("vehicle", 60, 60, 20, 20), choice("day")],
    "B": [box("person", 5, 5, 10, 10), box("person", 40, 40, 10, 10), choice("night")],
    "C": [box("person", 30, 30, 10, 20), choice("day")],
}
SECOND = {
    "A": [box("person", 11, 10, 20, 30), box("vehicle", 61, 61, 20, 20), choice("day")],
    "B": [
        box("person", 5, 5, 10, 10),
        box("vehicle", 40, 40, 10, 10),
        choice("day"),
        choice("face visible", name="privacy_flag"),
    ],
}


def add_labelstudio_user(server: LocalLabelStudio, email: str) -> tuple[int, str]:
    """A second Label Studio user in the admin's organisation, made through Label Studio's
    users API; its API token read with Label Studio's own CLI (`label-studio user`), which
    prints the user with the token Label Studio created for it."""
    admin = {"Authorization": f"Token {server.token}"}
    whoami = httpx.get(f"{server.url}/api/current-user/whoami", headers=admin, timeout=30)
    organisation = whoami.raise_for_status().json()["active_organization"]
    users = httpx.get(f"{server.url}/api/users/", headers=admin, timeout=30)
    known = [u for u in users.raise_for_status().json() if u["email"] == email]
    if known:  # the server is session-wide: a test run before made it already
        user_id = int(known[0]["id"])
    else:
        made = httpx.post(
            f"{server.url}/api/users/",
            headers=admin,
            json={
                "email": email,
                "username": email.split("@")[0],
                "active_organization": organisation,
            },
            timeout=30,
        )
        user_id = int(made.raise_for_status().json()["id"])
    printed = subprocess.run(
        [str(VENV / "bin" / "label-studio"), "user", "--username", email],
        env=server.environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    [line] = [x for x in printed.splitlines() if x.startswith("{")]
    info = ast.literal_eval(line)
    assert (info["id"], info["email"]) == (user_id, email)
    token = str(info["token"])
    who = httpx.get(
        f"{server.url}/api/current-user/whoami",
        headers={"Authorization": f"Token {token}"},
        timeout=30,
    )
    assert who.raise_for_status().json()["email"] == email  # the token is that user's
    return user_id, token


def annotate(server: LocalLabelStudio, token: str, task_id: int, result: list[Any]) -> int:
    """An annotation made through Label Studio's API as the token's user (completed_by)."""
    response = httpx.post(
        f"{server.url}/api/tasks/{task_id}/annotations/",
        headers={"Authorization": f"Token {token}"},
        json={"result": result},
        timeout=60,
    )
    return int(response.raise_for_status().json()["id"])


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Wait for the gateway's background work (the withdrawal after a flag) to be done."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)  # polling a condition, not timing anything


def sync_state(ctx: GatewayContext, asset_id: str, destination_id: str) -> SyncState:
    with transaction(ctx.engine) as s:
        row = s.get(AssetSync, (asset_id, destination_id))
        assert row is not None
        return SyncState(row.state)


# ---- independent figures (not gateway.reports code) -----------------------------------


def _iou(a: dict[str, float], b: dict[str, float]) -> float:
    ix = max(0.0, min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"]))
    iy = max(0.0, min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"]))
    union = a["width"] * a["height"] + b["width"] * b["height"] - ix * iy
    return ix * iy / union


def best_matching(
    a: list[dict[str, Any]], b: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, Any], float]]:
    """Exhaustive optimum (most pairs with IoU >= 0.5, then largest IoU sum): for the few
    boxes here it equals the report's greedy matching, computed another way."""
    small, large, flip = (a, b, False) if len(a) <= len(b) else (b, a, True)
    best: list[tuple[dict[str, Any], dict[str, Any], float]] = []
    for order in permutations(range(len(large)), len(small)):
        pairs = []
        for i, j in enumerate(order):
            overlap = _iou(small[i]["value"], large[j]["value"])
            if overlap >= 0.5:
                pairs.append(
                    (large[j], small[i], overlap) if flip else (small[i], large[j], overlap)
                )
        if (len(pairs), sum(p[2] for p in pairs)) > (len(best), sum(p[2] for p in best)):
            best = pairs
    return best


def kappa(pairs: list[tuple[str, str]]) -> float:
    n = len(pairs)
    observed = sum(x == y for x, y in pairs) / n
    first, second = Counter(x for x, _ in pairs), Counter(y for _, y in pairs)
    expected = sum(first[c] * second[c] for c in first) / n / n
    return (observed - expected) / (1 - expected)


def alpha_two_coders(pairs: list[tuple[str, str]]) -> float:
    """Krippendorff's alpha, nominal, two coders, no missing values (Krippendorff 2011)."""
    values = [v for pair in pairs for v in pair]
    n, totals = len(values), Counter(values)
    disagree = sum(2 for x, y in pairs if x != y)
    expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k)
    return 1 - (n - 1) * disagree / expected


def fmt(value: float) -> str:
    return f"{value:.4f}"


def _boxes(result: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in result if r["type"] == "rectanglelabels"]


def _labels(result: list[dict[str, Any]]) -> str | None:
    found = [r for r in result if r["type"] == "choices" and r["from_name"] == "image_labels"]
    return "|".join(sorted(found[0]["value"]["choices"])) if found else None


# ---- the flow ---------------------------------------------------------------------------


@pytest.mark.timeout(900)
def test_report_after_the_whole_flow_with_real_labelstudio(
    ctx: GatewayContext,
    dataset: Dataset,
    released: list[str],
    destination: Destination,
    labelstudio: LocalLabelStudio,
    gateway_server: str,
    clock: Any,
    tmp_path: Path,
) -> None:
    assert len(released) >= 4, "the sample photos give at least four released assets"
    names = dict(zip("ABCD", released, strict=False))

    # sync the redacted, released assets to the real Label Studio
    synced = sync_dataset(
        ctx,
        dataset_ref=dataset.name,
        destination_ref=destination.name,
        actor=ADMIN,
        retry=FAST_RETRY,
    )
    assert (synced.created, synced.failed) == (len(released), {})
    task_of = {
        t["data"]["gateway_asset_id"]: t["id"]
        for t in project_tasks(labelstudio, synced.project_id)
    }
    assert sorted(task_of) == sorted(released)

    # a sync to a destination outside the EEA is refused by the real residency check
    us = add_destination(ctx, labelstudio, gateway_server, name="annotators-us", region="us-east")
    with pytest.raises(ResidencyViolation):
        sync_dataset(ctx, dataset_ref=dataset.name, destination_ref=us.name, actor=ADMIN)

    # two Label Studio users annotate the same tasks through Label Studio's API
    second_id, second_token = add_labelstudio_user(labelstudio, SECOND_ANNOTATOR)
    made: dict[int, tuple[str, str]] = {}  # ls annotation id -> (user, task letter)
    for letter, result in FIRST.items():
        made[annotate(labelstudio, labelstudio.token, task_of[names[letter]], result)] = (
            "1",
            letter,
        )
    for letter, result in SECOND.items():
        made[annotate(labelstudio, second_token, task_of[names[letter]], result)] = (
            str(second_id),
            letter,
        )
    # the flag quarantined B at once (webhook); its task is withdrawn after the answer
    wait_for(
        lambda: sync_state(ctx, names["B"], destination.id) == SyncState.REMOVED,
        "the flagged task to be withdrawn from Label Studio",
    )
    assert task_of[names["B"]] not in {
        t["id"] for t in project_tasks(labelstudio, synced.project_id)
    }
    wait_for(  # each webhook is read back from Label Studio after its answer
        lambda: len(lineage(ctx, "annotation.received")) == len(made),
        "every annotation to be read back and stored",
    )
    received = lineage(ctx, "annotation.received")
    assert len(received) == len(made) == 5  # every annotation arrived through the webhook
    pulled = pull_annotations(ctx, destination, actor=ADMIN)
    assert (pulled.tasks, pulled.stored, pulled.deleted, pulled.flagged) == (
        len(released) - 1,
        3,
        0,
        [],
    )
    assert len(lineage(ctx, "annotation.received")) == 5  # the pull found nothing missed

    # retention: 31 days on, the default policy's 30 days for originals have passed
    clock.advance(days=31)
    retention = run_retention(ctx, dry_run=False)
    originals_deleted = [i for i in retention.done if i.kind is DueKind.ORIGINAL]
    assert originals_deleted and not retention.skipped
    # B was quarantined (the flag) before retention: its labels must not leave as training data
    with transaction(ctx.engine) as s:
        coco = export_annotations(
            ctx, s, dataset_ref=dataset.name, fmt=ExportFormat.COCO, actor=OFFICER
        )
    exported = b"".join(coco.files.values()).decode()
    assert names["A"] in exported and names["C"] in exported
    assert names["B"] not in exported

    # an erasure request for D's subject: its task is deleted in Label Studio and read back
    with transaction(ctx.engine) as s:
        d_asset = s.get(Asset, names["D"])
        assert d_asset is not None
        subject = identifiers(private_metadata(ctx, s, d_asset))[PseudonymField.SUBJECT_ID]
        outcome = request_erasure(
            ctx, s, dataset_ref=dataset.name, actor=OFFICER, subject_id=subject
        )
    assert outcome.erased == [names["D"]] and outcome.pending_recipients == 0
    gone = httpx.get(
        f"{labelstudio.url}/api/tasks/{task_of[names['D']]}",
        headers={"Authorization": f"Token {labelstudio.token}"},
        timeout=30,
    )
    assert gone.status_code == 404

    # the report
    signed = generate_dataset_report(ctx, dataset.name, actor=OFFICER)
    doc = json.loads(render(signed, ReportFormat.JSON))
    verify_report(doc, gateway_public_keys(ctx))
    r = doc["report"]
    with transaction(ctx.engine) as s:
        check_against_database(s, r, dataset, destination, names, second_id, made, subject)
        kept = s.exec(  # the work kept from withdrawn tasks (the flagged B): gone from LS
            select(Annotation)
            .join(AssetSync, col(AssetSync.asset_id) == col(Annotation.asset_id))
            .where(
                col(AssetSync.state) == SyncState.REMOVED,
                col(Annotation.deleted_at).is_(None),
                col(Annotation.was_cancelled).is_(False),
            )
        ).all()
    # the report counts annotations as Label Studio does (submitted, not cancelled)
    project = httpx.get(
        f"{labelstudio.url}/api/projects/{synced.project_id}",
        headers={"Authorization": f"Token {labelstudio.token}"},
        timeout=30,
    ).json()
    quality = r["annotation_quality"]
    assert kept and quality["annotations"] == project["total_annotations_number"] + len(kept)
    assert quality["in_label_studio"] == project["total_annotations_number"]
    assert quality["kept_from_withdrawn_tasks"] == len(kept)

    text = json.dumps(doc)
    assert subject not in text and SECOND_ANNOTATOR not in text and labelstudio.username not in text
    html = render(signed, ReportFormat.HTML).decode()
    assert "Nothing recorded yet: no annotation" not in html
    assert "annotator_leak_flag" in html and "us-east" in html
    pdf = render(signed, ReportFormat.PDF)
    assert pdf.startswith(b"%PDF")
    (tmp_path / "report.pdf").write_bytes(pdf)
    render_pages(tmp_path / "report.pdf", tmp_path / "page")


def render_pages(pdf: Path, prefix: Path) -> None:
    """The PDF's first pages as PNG, to look at (pdftoppm from poppler-utils, if installed)."""
    if shutil.which("pdftoppm") is None:
        return
    subprocess.run(
        ["pdftoppm", "-png", "-r", "70", "-f", "1", "-l", "3", str(pdf), str(prefix)],
        check=True,
        timeout=120,
    )
    pages = sorted(prefix.parent.glob(f"{prefix.name}-*.png"))
    assert len(pages) == 3 and all(p.stat().st_size > 10_000 for p in pages)


def check_against_database(
    s: Session,
    r: dict[str, Any],
    dataset: Dataset,
    destination: Destination,
    names: dict[str, str],
    second_id: int,
    made: dict[int, tuple[str, str]],
    subject: str,
) -> None:
    assets = s.exec(select(Asset).where(Asset.dataset_id == dataset.id)).all()
    ids = {a.id for a in assets}
    states = Counter(str(a.state) for a in assets)

    # redaction
    red = r["redaction"]
    assert red["assets_total"] == len(assets)
    assert {c["key"]: c["count"] for c in red["assets_by_state"]} == states
    assert states[AssetState.ERASED] == 1
    detections = s.exec(select(Detection).where(col(Detection.asset_id).in_(ids))).all()
    by_stage: dict[str, Counter[str]] = defaultdict(Counter)
    for d in detections:
        by_stage[d.stage][d.label] += 1
    assert {c["key"]: c["count"] for c in red["regions_by_label"]} == by_stage["detect"]
    assert {c["key"]: c["count"] for c in red["leak_check_by_label"]} == by_stage["leak_check"]
    assert red["assets_with_regions"] == len({d.asset_id for d in detections})
    records = s.exec(select(LineageRecord).order_by(col(LineageRecord.seq))).all()
    payloads = [(rec, json.loads(rec.payload)) for rec in records]
    recorded: Counter[str] = Counter()
    for rec, p in payloads:
        if rec.dataset_id == dataset.id and rec.action in ("asset.released", "asset.quarantined"):
            recorded.update({k: int(v) for k, v in (p["parameters"].get("regions") or {}).items()})
    assert {c["key"]: c["count"] for c in red["regions_recorded"]} == +recorded
    assert sum(recorded.values()) > 0, "the real engine redacted something"
    quarantine_codes: Counter[str] = Counter()
    for rec, p in payloads:
        if rec.dataset_id == dataset.id and rec.action == "asset.quarantined":
            quarantine_codes.update(
                c["code"] if isinstance(c, dict) else str(c)
                for c in p["parameters"].get("reasons", [])
            )
    reported = {c["key"]: c["count"] for c in red["quarantine_reasons"]}
    # the webhook quarantines at once, before the read-back confirms the flag
    flags = {k: n for k, n in reported.items() if k.startswith("annotator-leak-flag")}
    assert reported == quarantine_codes and sum(flags.values()) == 1
    assert red["tools"] and red["redaction_policy_digests"]

    # a deleted original leaves the asset released or quarantined as it was
    held = Counter(str(a.state) for a in assets)
    assert any(a.original_deleted_at for a in assets if a.state == AssetState.QUARANTINED)
    assert held[AssetState.QUARANTINED] >= 1 and held[AssetState.RELEASED] >= 2
    [usable] = [
        f for item in r["ai_act"]["article_10"] for f in item["findings"] if "(usable)" in f
    ]
    assert usable.startswith(
        f"Released (usable) assets: {held[AssetState.RELEASED]} of {len(assets)}; "
        f"quarantined: {held[AssetState.QUARANTINED]};"
    )

    # recipients, residency
    sent = s.exec(
        select(AssetSync).where(
            AssetSync.destination_id == destination.id,
            col(AssetSync.state).in_([SyncState.SYNCED, SyncState.REMOVED]),
        )
    ).all()
    [recipient] = r["processing_record"]["recipients"]
    assert (recipient["name"], recipient["region"]) == (destination.name, destination.region)
    assert recipient["assets_sent"] == len(sent) == len({x.asset_id for x in sent})
    assert r["residency"]["annotation_regions"] == [{"key": "eu-de", "count": len(sent)}]
    blocked = [p for x, p in payloads if x.action in ("residency.blocked", "residency.violation")]
    assert len(blocked) == 1
    [transfer] = r["residency"]["blocked_transfers"]
    assert (transfer["to_region"], transfer["point"], transfer["count"]) == ("us-east", "sync", 1)
    stored_regions = Counter(
        p["parameters"].get("storage_region") or p["region"]
        for x, p in payloads
        if x.action == "asset.received" and x.dataset_id == dataset.id
    )
    assert {c["key"]: c["count"] for c in r["residency"]["storage_regions"]} == stored_regions

    # retention and erasure
    by_action = Counter(x.action for x, _ in payloads if x.dataset_id == dataset.id)
    deletions = {e["action"]: e["count"] for e in r["retention"]["deletions"]}
    assert deletions["asset.original_deleted"] == by_action["asset.original_deleted"] > 0
    assert deletions["asset.erased"] == by_action["asset.erased"] == 1
    assert not any(a.original_blob for a in assets)
    erasures = {e["action"]: e["count"] for e in r["retention"]["erasure_requests"]}
    assert erasures == {
        a: n for a, n in by_action.items() if a.startswith(("erasure.", "retention."))
    }
    [request] = s.exec(select(ErasureRequest).where(ErasureRequest.dataset_id == dataset.id)).all()
    [entry] = r["incidents"]["erasure_register"]
    assert (
        (entry["request_id"], entry["state"])
        == (request.id, request.state)
        == (
            request.id,
            "completed",
        )
    )
    assert entry["assets_erased"] == len(request.assets_erased) == 1
    assert entry["recipients_notified"] == len(request.recipients) == 1
    assert request.recipients[0]["state"] == "removed"
    assert subject not in json.dumps(r)

    # incidents
    incidents = s.exec(select(Incident).where(col(Incident.asset_id).in_(ids))).all()
    assert (
        [(i["kind"], i["asset_id"]) for i in r["incidents"]["incidents"]]
        == [(x.kind, x.asset_id) for x in incidents]
        == [("annotator_leak_flag", names["B"])]
    )
    assert r["incidents"]["quarantined_assets"] == held[AssetState.QUARANTINED]

    # pseudonymisation evidence (Art. 32)
    vault = Counter(
        v.field for v in s.exec(select(VaultEntry).where(VaultEntry.dataset_id == dataset.id))
    )
    [measure] = [
        m for m in r["processing_record"]["security_measures"] if "Pseudonymisation" in m["measure"]
    ]
    assert all(f"{k}: {n}" in measure["evidence"] for k, n in vault.items())

    # annotation quality, recomputed from the stored results
    rows = s.exec(
        select(Annotation)
        .where(col(Annotation.asset_id).in_(ids), col(Annotation.deleted_at).is_(None))
        .order_by(col(Annotation.id))
    ).all()
    assert sorted(x.ls_annotation_id for x in rows) == sorted(made)
    pseudonyms = {x.annotator for x in rows}
    assert len(pseudonyms) == 2 and not pseudonyms & {"1", str(second_id), SECOND_ANNOTATOR}
    user_of = {x.annotator: made[x.ls_annotation_id][0] for x in rows}
    assert len(set(user_of.values())) == 2  # one pseudonym per Label Studio user
    q = r["annotation_quality"]
    assert q["annotations"] == len(rows) == 5 and q["cancelled"] == 0
    assert {c["key"]: c["count"] for c in q["per_annotator"]} == Counter(x.annotator for x in rows)
    by_asset: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(dict)
    for row in rows:
        by_asset[row.asset_id][row.annotator] = row.result
    overlap = {a: by for a, by in by_asset.items() if len(by) == 2}
    assert (
        (q["assets_annotated"], q["assets_with_overlap"])
        == (len(by_asset), len(overlap))
        == (
            3,
            2,
        )
    )
    assert q["overlap_coverage"] == fmt(len(overlap) / len(by_asset))
    total_boxes, matched, label_pairs, choice_pairs = 0, [], [], []
    for by in overlap.values():
        first, second = sorted(by)
        total_boxes += len(_boxes(by[first])) + len(_boxes(by[second]))
        pairs = best_matching(_boxes(by[first]), _boxes(by[second]))
        matched += [p[2] for p in pairs]
        label_pairs += [
            (a["value"]["rectanglelabels"][0], b["value"]["rectanglelabels"][0])
            for a, b, _ in pairs
        ]
        la, lb = _labels(by[first]), _labels(by[second])
        if la and lb:
            choice_pairs.append((la, lb))
    assert (q["box_comparisons"], q["box_matched_pairs"]) == (len(overlap), len(matched)) == (2, 4)
    assert q["box_f1"] == fmt(2 * len(matched) / total_boxes)
    assert q["box_mean_iou"] == fmt(sum(matched) / len(matched))
    assert q["box_label_kappa"] == fmt(kappa(label_pairs))
    [pair] = q["choice_kappa_pairs"]
    assert (pair["annotator_a"], pair["annotator_b"]) == tuple(sorted(pseudonyms))
    assert (pair["items"], pair["kappa"]) == (len(choice_pairs), fmt(kappa(choice_pairs)))
    assert (q["choice_units"], q["choice_alpha"]) == (
        len(choice_pairs),
        fmt(alpha_two_coders(choice_pairs)),
    )
    labels: Counter[str] = Counter()
    for row in rows:
        labels.update(b["value"]["rectanglelabels"][0] for b in _boxes(row.result))
        labels.update((_labels(row.result) or "").split("|"))
    del labels[""]
    assert {c["key"]: c["count"] for c in q["label_distribution"]} == labels
    assert labels == {"person": 6, "vehicle": 3, "day": 4, "night": 1}
    assert {c["key"]: c["count"] for c in q["subgroup_distribution"]} == {
        "road user: person": 6,
        "road user: vehicle": 3,
    }

    # lineage: the chain as verified at generation, the head, the signing key
    lin = r["lineage"]
    head = s.get(LineageHead, 1)
    assert head is not None
    assert lin["verified"] is True and lin["failure"] is None
    upto = [x for x in records if x.seq <= lin["head_seq"]]
    assert lin["records_verified"] == len(upto) and upto[-1].record_hash == lin["head_hash"]
    # after the verified head: the signing key made for this first report (unless the
    # service's checkpointer, polling every 30 s, made it first), and the report's record
    after = [x.action for x in records if x.seq > lin["head_seq"]]
    assert after in (["lineage-key.created", "report.generated"], ["report.generated"])
    assert [x.action for x in records].count("lineage-key.created") == 1
    assert lin["dataset_records"] == sum(1 for x in upto if x.dataset_id == dataset.id)
    keys = s.exec(select(LineageSigningKey)).all()
    assert {(k["key_id"], k["fingerprint"]) for k in lin["signing_keys"]} == {
        (k.key_id, sha256(k.public_key).hexdigest()) for k in keys
    }
