"""Every malformed manifest of invalid_cases.py is refused by the models too, naming the field
(the integration tests hold the API server to the same table)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mitigator.models import IncidentSpec, PolicySpec, describe_validation_error
from tests.support.invalid_cases import INVALID_CASES, InvalidCase

MODELS: dict[str, type[IncidentSpec] | type[PolicySpec]] = {
    "Incident": IncidentSpec,
    "MitigationPolicy": PolicySpec,
}


def test_the_table_is_broad() -> None:
    assert len(INVALID_CASES) >= 14
    assert {case.kind for case in INVALID_CASES} == set(MODELS)
    assert len({case.manifest["metadata"]["name"] for case in INVALID_CASES}) == len(INVALID_CASES)


@pytest.mark.parametrize("case", INVALID_CASES, ids=[case.description for case in INVALID_CASES])
def test_the_model_refuses_it_naming_the_field(case: InvalidCase) -> None:
    with pytest.raises(ValidationError) as refusal:
        MODELS[case.kind].model_validate(case.manifest["spec"])
    message = describe_validation_error(refusal.value)
    assert case.expected_field in message
