"""Turning a pydantic ValidationError into one line a person can act on."""

from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails


def describe_validation_error(error: ValidationError, *, root: str = "spec") -> str:
    """One line naming each offending field the way kubectl would, e.g.
    "spec.actions[0]: scale needs exactly one of replicas and increment".

    Field names are the camelCase wire names, since that is what the person wrote.
    """
    problems = []
    for detail in error.errors():
        if _is_echo_of_item_errors(detail):
            continue
        path = root
        for part in detail["loc"]:
            path += f"[{part}]" if isinstance(part, int) else f".{part}"
        message = detail["msg"].removeprefix("Value error, ")
        problems.append(f"{path}: {message}")
    return "; ".join(problems)


def _is_echo_of_item_errors(detail: ErrorDetails) -> bool:
    # pydantic counts a tuple's length after dropping the items that failed, so one bad item
    # in a one-item list also reports "should have at least 1 item": noise, not a problem.
    given: Any = detail["input"]
    minimum = detail.get("ctx", {}).get("min_length")
    return (
        detail["type"] == "too_short"
        and isinstance(given, list | tuple)
        and isinstance(minimum, int)
        and len(given) >= minimum
    )
