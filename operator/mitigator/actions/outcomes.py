"""Outcomes of the writes the actions make, from what went wrong as much as from success."""

from __future__ import annotations

from collections.abc import Callable

from mitigator.actions.change import ActionRefused
from mitigator.k8s import ApiError, Conflict, NotFound
from mitigator.models import ActionState
from mitigator.models.execution import ActionOutcome


def answered(act: Callable[[], ActionOutcome]) -> ActionOutcome:
    """Run a change (an action, a revert, a GitOps switch); what can go wrong becomes an
    outcome, never an exception: refused as the object is → Skipped; gone → Failed; changed
    since it was read → Failed, retried on fresh state; the API server failing → Failed,
    retried when a retry may help."""
    try:
        return act()
    except NotFound as exc:
        return ActionOutcome(ActionState.FAILED, str(exc))
    except ActionRefused as exc:
        return ActionOutcome(ActionState.SKIPPED, str(exc))
    except Conflict as exc:
        return ActionOutcome(ActionState.FAILED, str(exc), retryable=True)
    except ApiError as exc:
        return ActionOutcome(ActionState.FAILED, str(exc), retryable=exc.transient)
