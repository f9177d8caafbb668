"""Agreement statistics against textbook values computed by hand."""

from __future__ import annotations

import pytest

from gateway.reports.agreement import (
    Box,
    box_agreement,
    cohens_kappa,
    iou,
    krippendorff_alpha_nominal,
    match_boxes,
)


def test_iou_of_known_boxes() -> None:
    a = Box(0, 0, 10, 10, "p")
    assert iou(a, a) == 1.0
    assert iou(a, Box(5, 0, 10, 10, "p")) == pytest.approx(50 / 150)
    assert iou(a, Box(20, 20, 5, 5, "p")) == 0.0
    assert iou(Box(0, 0, 0, 0, "p"), Box(0, 0, 0, 0, "p")) == 0.0


def test_matching_is_one_to_one_and_prefers_the_best_overlap() -> None:
    a = [Box(0, 0, 10, 10, "p"), Box(1, 0, 10, 10, "p")]
    b = [Box(1, 0, 10, 10, "p")]
    result = match_boxes(a, b)
    assert result.pairs == ((1, 0, 1.0),)  # b's box goes to its exact twin only
    assert result.matched == 1
    assert match_boxes(a, b, threshold=1.01).matched == 0


def test_box_agreement_over_images_and_label_pairs() -> None:
    images = {
        "img1": {
            "ann-a": [Box(0, 0, 10, 10, "person"), Box(50, 50, 10, 10, "car")],
            "ann-b": [Box(0, 0, 10, 10, "person"), Box(50, 50, 10, 10, "person")],
        },
        "img2": {"ann-a": [Box(0, 0, 10, 10, "car")], "ann-b": []},
        "img3": {"ann-a": [Box(0, 0, 10, 10, "car")]},  # one annotator: no comparison
    }
    totals, labels = box_agreement(images)
    assert totals.comparisons == 2
    assert totals.boxes == 5 and totals.matched_pairs == 2
    assert totals.f1 == pytest.approx(4 / 5)
    assert totals.mean_iou == pytest.approx(1.0)
    assert totals.label_agreement == pytest.approx(0.5)
    assert sorted(labels) == [("car", "person"), ("person", "person")]


def test_cohens_kappa_textbook_example() -> None:
    # 50 items: both yes 20, A yes/B no 5, A no/B yes 10, both no 15 -> p_o .7, p_e .5, k .4
    pairs = [("y", "y")] * 20 + [("y", "n")] * 5 + [("n", "y")] * 10 + [("n", "n")] * 15
    assert cohens_kappa(pairs) == pytest.approx(0.4)


def test_cohens_kappa_perfect_chance_and_undefined() -> None:
    assert cohens_kappa([("a", "a"), ("b", "b")]) == pytest.approx(1.0)
    assert cohens_kappa([("a", "b"), ("b", "a")]) == pytest.approx(-1.0)
    assert cohens_kappa([]) is None
    assert cohens_kappa([("a", "a")] * 3) is None  # one category only: undefined


def test_krippendorff_alpha_matches_krippendorffs_worked_example() -> None:
    # Krippendorff (2011), nominal data, 4 coders x 12 units with missing values: alpha = 0.743
    coders = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    units = [[c[u] for c in coders if c[u] is not None] for u in range(12)]
    alpha = krippendorff_alpha_nominal(units)
    assert alpha is not None
    assert round(alpha, 3) == 0.743


def test_krippendorff_alpha_edges() -> None:
    assert krippendorff_alpha_nominal([["a", "a"], ["b", "b"]]) == pytest.approx(1.0)
    assert krippendorff_alpha_nominal([["a"], ["b"]]) is None  # nothing pairable
    assert krippendorff_alpha_nominal([["a", "a"], ["a", "a"]]) is None  # one category
    # two coders, no missing data: alpha equals the small-sample-corrected Scott's pi
    alpha = krippendorff_alpha_nominal([["a", "b"], ["a", "a"], ["b", "b"]])
    assert alpha == pytest.approx(1 - 5 * 2 / 18)  # 1 - (n - 1) o_ab+o_ba / (2 n_a n_b)
