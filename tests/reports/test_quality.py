"""Annotation quality from Label Studio results, against values computed by hand."""

from __future__ import annotations

from typing import Any

from gateway.reports.collect_annotations import quality_from_rows

ONTOLOGY = {
    "labels": [
        {"name": "person", "control": "box", "subgroup": "road user"},
        {"name": "vehicle", "control": "box", "subgroup": "road user"},
        {"name": "mask_worn", "control": "choice"},
    ]
}


def box(x: float, y: float, w: float, h: float, label: str) -> dict[str, Any]:
    return {
        "type": "rectanglelabels",
        "from_name": "label",
        "to_name": "image",
        "value": {"x": x, "y": y, "width": w, "height": h, "rectanglelabels": [label]},
    }


def choice(value: str) -> dict[str, Any]:
    return {
        "type": "choices",
        "from_name": "mask_worn",
        "to_name": "image",
        "value": {"choices": [value]},
    }


ROWS = [
    (
        "a1",
        "ann-1",
        [box(0, 0, 10, 10, "person"), box(50, 50, 10, 10, "person"), choice("yes")],
        False,
    ),
    (
        "a1",
        "ann-2",
        [box(0, 0, 10, 10, "person"), box(50, 50, 10, 10, "vehicle"), choice("yes")],
        False,
    ),
    ("a2", "ann-1", [box(0, 0, 20, 20, "person"), choice("no")], False),
    ("a2", "ann-2", [box(0, 0, 20, 10, "person"), choice("yes")], False),  # IoU exactly 0.5
    ("a3", "ann-1", [box(0, 0, 5, 5, "vehicle"), choice("no")], False),
    ("a3", "ann-2", [box(0, 0, 5, 5, "vehicle")], True),  # cancelled: ignored
    ("a4", "ann-1", [choice("no")], False),
    (
        "a4",
        "ann-2",
        '[{"type": "choices", "from_name": "mask_worn", "value": {"choices": ["no"]}}]',
        False,
    ),
]


def test_quality_figures_match_hand_computed_values() -> None:
    q = quality_from_rows(ROWS, ONTOLOGY)
    assert (q.annotations, q.cancelled) == (7, 1)  # as Label Studio counts: skipped apart
    assert {c.key: c.count for c in q.per_annotator} == {"ann-1": 4, "ann-2": 3}
    assert (q.assets_annotated, q.assets_with_overlap, q.overlap_coverage) == (4, 3, "0.7500")
    # boxes: a1 2+2, a2 1+1, a4 0+0; matched a1 2 (IoU 1, 1), a2 1 (IoU .5)
    assert (q.box_comparisons, q.box_matched_pairs, q.box_f1) == (3, 3, "1.0000")
    assert q.box_mean_iou == "0.8333"
    # labels of matched boxes: (person, person) x2, (person, vehicle): p_o 2/3 = p_e 2/3
    assert q.box_label_kappa == "0.0000"
    # choices: (yes, yes), (no, yes), (no, no): p_o 2/3, p_e 4/9 -> kappa 0.4
    [pair] = q.choice_kappa_pairs
    assert (pair.annotator_a, pair.annotator_b, pair.items, pair.kappa) == (
        "ann-1",
        "ann-2",
        3,
        "0.4000",
    )
    # alpha: n_yes = n_no = 3, n = 6, D_o = 2, D_e = 18 -> 1 - 5 * 2 / 18
    assert (q.choice_units, q.choice_alpha) == (3, "0.4444")
    assert {c.key: c.count for c in q.label_distribution} == {
        "person": 5,
        "no": 4,
        "yes": 3,
        "vehicle": 2,
    }
    assert {c.key: c.count for c in q.subgroup_distribution} == {
        "road user: person": 5,
        "road user: vehicle": 2,
    }


def test_no_overlap_leaves_agreement_undefined_not_zero() -> None:
    q = quality_from_rows([("a1", "ann-1", [box(0, 0, 1, 1, "person")], False)], ONTOLOGY)
    assert q.assets_with_overlap == 0
    assert q.box_f1 is None and q.box_mean_iou is None and q.box_label_kappa is None
    assert q.choice_alpha is None and q.choice_kappa_pairs == []


def test_privacy_flags_are_not_labels() -> None:
    flag = {"type": "choices", "from_name": "privacy_flag", "value": {"choices": ["face visible"]}}
    q = quality_from_rows(
        [("a1", "ann-1", [flag], False), ("a1", "ann-2", [flag], False)], ONTOLOGY
    )
    assert q.label_distribution == [] and q.choice_units == 0
