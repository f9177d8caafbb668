"""A policy whose enabled roles need a component that is not installed is refused at
activation with a typed error, and nothing is stored."""

from __future__ import annotations

import sys

import pytest

from gateway.core.db import transaction
from gateway.policy.components import ComponentMissing
from gateway.policy.versions import list_versions
from tests.policy.helpers import bind, policy_doc

pytestmark = pytest.mark.db


def test_a_policy_needing_an_absent_component_is_refused_at_activation(
    ctx, dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = policy_doc("needs-text", redaction={"text": {"enabled": True}})
    # the text detector's library is absent from this interpreter (None blocks its import)
    monkeypatch.setitem(sys.modules, "presidio_image_redactor", None)
    with pytest.raises(ComponentMissing) as refused:
        bind(ctx, dataset, doc)
    assert refused.value.code == "component-missing" and refused.value.status == 422
    assert refused.value.details["missing"] == [
        "text: Presidio with PP-OCRv4 (presidio-analyzer, presidio-image-redactor, rapidocr)"
    ]
    with transaction(ctx.engine) as session:
        assert [v.name for v in list_versions(session)] == []

    monkeypatch.undo()  # installed again: the same policy activates
    activation = bind(ctx, dataset, doc)
    assert activation.version.name == "needs-text"


def test_a_policy_that_leaves_the_role_off_does_not_need_it(
    ctx, dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "presidio_image_redactor", None)
    activation = bind(ctx, dataset, policy_doc("no-text", redaction={"text": {"enabled": False}}))
    assert activation.version.name == "no-text"
