"""Datasets and destinations are found by id or by name through one helper
(`gateway.core.db.get_by_id_or_name`); an unknown reference is a NotFound naming what was sought."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from gateway.core.context import GatewayContext
from gateway.core.db import get_by_id_or_name
from gateway.core.errors import NotFound
from gateway.core.models import Dataset
from gateway.datasets import get_dataset
from gateway.labelstudio.destinations import get_destination

pytestmark = pytest.mark.db


def test_a_dataset_is_found_by_id_and_by_name(ctx: GatewayContext, dataset: Dataset) -> None:
    with Session(ctx.engine) as session:
        assert get_dataset(session, dataset.id).id == dataset.id
        assert get_dataset(session, dataset.name).id == dataset.id
        assert get_by_id_or_name(session, Dataset, dataset.name, what="dataset").id == dataset.id


def test_an_unknown_reference_is_not_found_with_its_kind(ctx: GatewayContext) -> None:
    with Session(ctx.engine) as session:
        with pytest.raises(NotFound) as dataset_error:
            get_dataset(session, "no-such-dataset")
        with pytest.raises(NotFound) as destination_error:
            get_destination(session, "no-such-destination")
    assert dataset_error.value.details == {"dataset": "no-such-dataset"}
    assert destination_error.value.details == {"destination": "no-such-destination"}
    assert "no destination 'no-such-destination'" in destination_error.value.message
