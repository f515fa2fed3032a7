"""Label selectors (metav1.LabelSelector): which Deployments a policy covers."""

from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from mitigator.models.base import ApiModel
from mitigator.models.common import reject_duplicates

SELECTOR_EMPTY = "selector must not be empty: a policy must never cover every Deployment"
SELECTOR_VALUES_MISMATCH = (
    "values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist"
)


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(ApiModel):
    key: str = Field(min_length=1, max_length=317)
    operator: SelectorOperator
    values: Annotated[tuple[str, ...], AfterValidator(reject_duplicates)] = Field(
        default=(), max_length=64
    )

    @model_validator(mode="after")
    def _values_fit_operator(self) -> "LabelSelectorRequirement":
        needs_values = self.operator in (SelectorOperator.IN, SelectorOperator.NOT_IN)
        if needs_values != bool(self.values):
            raise ValueError(SELECTOR_VALUES_MISMATCH)
        return self


class LabelSelector(ApiModel):
    """Labels of the Deployments a policy covers (metav1.LabelSelector semantics)."""

    match_labels: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict, max_length=64
    )
    match_expressions: tuple[LabelSelectorRequirement, ...] = Field(default=(), max_length=32)

    @model_validator(mode="after")
    def _not_empty(self) -> "LabelSelector":
        # An empty metav1 selector matches everything; for a policy that can scale things to
        # zero, that is never what anyone meant.
        if not self.match_labels and not self.match_expressions:
            raise ValueError(SELECTOR_EMPTY)
        return self
