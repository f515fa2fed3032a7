"""The base class every resource model shares."""

from typing import Any, get_origin

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.alias_generators import to_camel

JsonObject = dict[str, Any]


class ApiModel(BaseModel):
    """A piece of an Incident or MitigationPolicy: camelCase on the wire, snake_case in Python.

    Frozen, because a validated spec is a value the handlers reason about, not a buffer they
    edit; `model_copy(update=...)` makes a changed copy. Unknown fields are refused so a typo
    in an example or a test fails loudly instead of being silently ignored (the API server,
    with kubectl's default strict field validation, refuses them too).
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="forbid",
    )

    @model_validator(mode="before")
    @classmethod
    def _nulls_mean_absent(cls, data: Any) -> Any:
        # The API server drops a null where the schema does not allow one (a field, or a value
        # of a map such as labels) and then applies the field's default: `dryRun:` with no
        # value in YAML means "not given". An unknown field stays, null or not, to be refused.
        if not isinstance(data, dict):
            return data
        known = cls._wire_and_python_names()
        maps = cls._map_field_names()
        return {
            key: _without_null_values(value) if key in maps else value
            for key, value in data.items()
            if value is not None or key not in known
        }

    @classmethod
    def _wire_and_python_names(cls) -> frozenset[str]:
        return frozenset(cls.model_fields) | frozenset(
            field.alias for field in cls.model_fields.values() if field.alias
        )

    @classmethod
    def _map_field_names(cls) -> frozenset[str]:
        """Names of the fields that are string-keyed maps, such as labels and env."""
        return frozenset(
            name
            for field_name, field in cls.model_fields.items()
            if get_origin(field.annotation) is dict
            for name in (field_name, field.alias)
            if name
        )

    def to_api_dict(self) -> dict[str, Any]:
        """The wire form: camelCase keys, JSON types, and no nulls.

        Nulls are left out because in a JSON merge patch a null deletes the field: a model
        built with only the fields a handler changes dumps to exactly that patch.
        """
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


class StatusModel(ApiModel):
    """A piece of a status: written by the operator, read back from the API server.

    Unknown fields are ignored rather than refused: a status read from the server may have been
    written by a newer operator version, and reading it must not fail.
    """

    model_config = ConfigDict(extra="ignore")

    @classmethod
    def _map_field_names(cls) -> frozenset[str]:
        # A status's maps are free-form objects (an action's before/after) in which a null
        # means something, e.g. "this annotation was not set".
        return frozenset()


def _without_null_values(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: item for key, item in value.items() if item is not None}
    return value
