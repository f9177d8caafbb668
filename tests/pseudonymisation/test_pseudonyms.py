"""Pseudonyms: stable within a dataset, unlinkable across datasets, separate per field."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.db import transaction
from gateway.core.errors import NotFound
from gateway.datasets import DatasetSpec, create_dataset
from gateway.lineage import Actor
from gateway.pseudonymisation.policy import PseudonymField
from gateway.pseudonymisation.pseudonyms import compute_pseudonym, field_of
from gateway.pseudonymisation.task_meta import pseudonym
from tests.conftest import DATASET_SPEC

values = st.text(min_size=1, max_size=64)
fields = st.sampled_from(list(PseudonymField))
secrets = st.binary(min_size=32, max_size=32)


@given(secret=secrets, field=fields, value=values)
def test_same_value_same_pseudonym_within_a_secret(secret, field, value) -> None:
    first = compute_pseudonym(secret, field=field, value=value)
    assert first == compute_pseudonym(secret, field=field, value=value)
    assert field_of(first) is field
    assert value not in first or len(value) < 4  # never the value itself


@given(a=secrets, b=secrets, field=fields, value=values)
def test_different_secrets_give_unlinkable_pseudonyms(a, b, field, value) -> None:
    if a != b:
        assert compute_pseudonym(a, field=field, value=value) != compute_pseudonym(
            b, field=field, value=value
        )


@given(secret=secrets, value=values, pair=st.permutations(list(PseudonymField)))
def test_fields_are_separate_domains(secret, value, pair) -> None:
    one, other = pair[0], pair[1]
    digest = compute_pseudonym(secret, field=one, value=value).split("_", 1)[1]
    assert digest != compute_pseudonym(secret, field=other, value=value).split("_", 1)[1]


@given(secret=secrets, field=fields, a=values, b=values)
def test_distinct_values_distinct_pseudonyms(secret, field, a, b) -> None:
    if a != b:
        assert compute_pseudonym(secret, field=field, value=a) != compute_pseudonym(
            secret, field=field, value=b
        )


def test_unicode_forms_agree_and_bad_secret_is_refused() -> None:
    secret = os.urandom(32)
    composed, decomposed = "Jos\u00e9-17", "Jose\u0301-17"
    assert compute_pseudonym(
        secret, field=PseudonymField.SUBJECT_ID, value=composed
    ) == compute_pseudonym(secret, field=PseudonymField.SUBJECT_ID, value=decomposed)
    with pytest.raises(ValueError, match="32 bytes"):
        compute_pseudonym(b"short", field=PseudonymField.SUBJECT_ID, value="x")


@pytest.fixture
def two_datasets(ctx, dataset) -> tuple[str, str]:
    spec = DatasetSpec.model_validate(DATASET_SPEC | {"name": "other-scenes"})
    with transaction(ctx.engine) as session:
        other = create_dataset(session, ctx, spec, actor=Actor("cli", "test"))
    return dataset.id, other.id


@pytest.mark.db
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(subject=st.text(min_size=1, max_size=40))
def test_same_subject_same_pseudonym_in_a_dataset_different_across(
    ctx, two_datasets, subject
) -> None:
    # the fixtures are shared by every example on purpose: one gateway, two datasets
    a, b = two_datasets
    field = PseudonymField.SUBJECT_ID
    with transaction(ctx.engine) as s:
        in_a = pseudonym(ctx, s, dataset_id=a, field=field, value=subject)
        again = pseudonym(ctx, s, dataset_id=a, field=field, value=subject)
        in_b = pseudonym(ctx, s, dataset_id=b, field=field, value=subject)
    with transaction(ctx.engine) as s:  # stable across transactions (the secret is stored)
        later = pseudonym(ctx, s, dataset_id=a, field=field, value=subject)
    assert in_a == again == later
    assert in_a != in_b


@pytest.mark.db
def test_pseudonyms_survive_dataset_key_rotation(ctx, dataset) -> None:
    field = PseudonymField.FILE_NAME
    with transaction(ctx.engine) as s:
        before = pseudonym(ctx, s, dataset_id=dataset.id, field=field, value="anna_2024.jpg")
        ctx.keys.create_dataset_key(s, dataset.id, now=ctx.clock())
    with transaction(ctx.engine) as s:
        after = pseudonym(ctx, s, dataset_id=dataset.id, field=field, value="anna_2024.jpg")
    assert before == after


@pytest.mark.db
def test_unknown_dataset_has_no_pseudonyms(ctx) -> None:
    with transaction(ctx.engine) as s, pytest.raises(NotFound):
        pseudonym(ctx, s, dataset_id="nope", field=PseudonymField.SUBJECT_ID, value="x")
