"""Which Incidents kopf's watch leaves out (handlers/watch_selection.py): only those for which
no handler of ours would ever run again (settled, Failed, Suppressed); the tick and the
escalation handler write `settled` exactly then; and a CRD without the selectable fields falls
back to watching every Incident."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import kopf
import pytest
from kopf._cogs.clients import errors
from kopf._cogs.structs import references

from mitigator.handlers.escalation import needs_notice, owes_nothing, settled_by_the_tick
from mitigator.handlers.incidents import needs_tick
from mitigator.handlers.indexes import CONTENDERS, POLICIES, index_contender
from mitigator.handlers.watch_selection import (
    _falling_back,
    incident_field_selector,
    left_out,
    select_incidents,
)
from mitigator.models import Phase

INCIDENTS = references.Resource(
    group="mitigator.luminamind.io", version="v1alpha1", plural="incidents", kind="Incident"
)
DEPLOYMENTS = references.Resource(group="apps", version="v1", plural="deployments")
NOW = "2026-01-01T00:00:00Z"
# A level that was told of the incident and not yet of its resolution.
TOLD = {"level": 1, "delivered": True, "notifiedAt": NOW}


def _statuses(phase: Phase) -> list[dict[str, Any]]:
    """Statuses of this phase that would keep a handler interested if any could."""
    base = {"phase": phase.value, "detectedAt": NOW, "policy": "runbooks"}
    return [
        base,
        {**base, "escalation": {"levels": [TOLD]}},
        {**base, "escalation": {"levels": [{**TOLD, "resolveAttempts": 1}]}},
    ]


def _specs() -> list[dict[str, Any]]:
    target = {"kind": "Deployment", "name": "web"}
    return [{"target": target}, {"target": target, "resolve": True}]


def test_the_selector_leaves_out_settled_failed_and_suppressed() -> None:
    assert incident_field_selector() == (
        "status.settled!=true,status.phase!=Failed,status.phase!=Suppressed"
    )
    phases = [p for p in Phase if left_out({"phase": p.value})]
    assert phases == [Phase.FAILED, Phase.SUPPRESSED]
    assert not left_out({})  # a new Incident has no phase yet
    assert left_out({"phase": "Resolved", "settled": True})
    assert not left_out({"phase": "Resolved"})  # an older build's: it may owe notices


def _interested(spec: dict[str, Any], status: dict[str, Any]) -> bool:
    kwargs: dict[str, Any] = {POLICIES: {}, CONTENDERS: {}}
    body = kopf.Body({"metadata": {"name": "i", "uid": "u"}, "spec": spec, "status": status})
    return bool(
        needs_tick(spec=body.spec, status=body.status)
        or needs_notice(body.spec, body.status, "shop", **kwargs)
        or index_contender(namespace="shop", name="i", uid="u", spec=body.spec, status=body.status)
    )


@pytest.mark.parametrize("phase", list(Phase))
def test_a_left_out_incident_is_one_no_handler_would_run_for(phase: Phase) -> None:
    """The handlers' own filters are the reference: a phase may be left out only if neither
    timer would ever admit an Incident in it, and the live-incidents index drops it."""
    interested = any(_interested(spec, status) for spec in _specs() for status in _statuses(phase))
    if left_out({"phase": phase.value}):
        assert not interested
    if phase is Phase.RESOLVED:
        # Why Resolved is not left out by its phase: its resolved notices go out from the watch.
        assert interested


@pytest.mark.parametrize("phase", list(Phase))
def test_settled_is_written_exactly_when_no_handler_would_run_again(phase: Phase) -> None:
    """`owes_nothing` decides `settled` in the final write: true only when no filter admits
    the Incident any more; and whenever a final Incident interests no handler, it is true (or
    the Incident would stay watched for nothing)."""
    for spec in [
        *_specs(),
        {"target": {"kind": "Deployment", "name": "web"}, "source": {"type": "drill"}},
    ]:
        for status in [*_statuses(phase), {"phase": phase.value}]:
            if owes_nothing(spec, status):
                assert not _interested(spec, status), (spec, status)
            elif phase.is_terminal:
                assert _interested(spec, status), (spec, status)
            else:
                assert not phase.is_terminal


def test_a_resolved_incident_owes_nothing_once_its_notices_are_done_or_given_up() -> None:
    base = {"phase": "Resolved", "detectedAt": NOW}
    spec = _specs()[0]
    assert not owes_nothing(spec, {**base, "escalation": {"levels": [TOLD]}})
    assert owes_nothing(
        spec, {**base, "escalation": {"levels": [TOLD], "resolvedNoticesDone": True}}
    )
    told_back = {**TOLD, "resolvedNotified": True}
    assert owes_nothing(spec, {**base, "escalation": {"levels": [told_back]}})
    given_up = {**TOLD, "resolveAttempts": 6}
    assert owes_nothing(spec, {**base, "escalation": {"levels": [given_up]}})
    assert not owes_nothing(spec, {"phase": "Escalated", "detectedAt": NOW})


def test_the_selector_applies_to_incidents_only() -> None:
    settings = kopf.OperatorSettings()
    select_incidents(settings)
    assert settings.watching.field_selectors.collect(INCIDENTS) == [incident_field_selector()]
    assert settings.watching.field_selectors.collect(DEPLOYMENTS) == []


def _watch(failures: list[int]) -> tuple[list[Any], kopf.OperatorSettings, list[str]]:
    """The fallback around a watch that fails with each status of `failures` in turn, then
    yields one event: (events seen, the settings after, the selectors each attempt used)."""
    settings = kopf.OperatorSettings()
    select_incidents(settings)
    used: list[str] = []

    async def original(
        *, settings: kopf.OperatorSettings, resource: references.Resource, **_: Any
    ) -> AsyncIterator[Any]:
        used.append(",".join(settings.watching.field_selectors.collect(resource)))
        if failures:
            status = failures.pop(0)
            raise errors.APIClientError("field label not supported", status=status, headers={})
        yield {"type": "ADDED", "object": {"metadata": {"name": "web"}}}

    async def collect() -> list[Any]:
        wrapped = _falling_back(original)
        return [item async for item in wrapped(settings=settings, resource=INCIDENTS)]

    return asyncio.run(collect()), settings, used


def test_without_the_selectable_field_every_incident_is_watched() -> None:
    events, settings, used = _watch([400])
    assert used == [incident_field_selector(), ""]
    assert [e["type"] for e in events] == ["ADDED"]
    assert settings.watching.field_selectors.collect(INCIDENTS) == []


def test_other_errors_are_kopfs_to_handle() -> None:
    with pytest.raises(errors.APIClientError):
        _watch([403])


def test_a_served_selector_stays() -> None:
    events, settings, used = _watch([])
    assert used == [incident_field_selector()] and len(events) == 1
    assert settings.watching.field_selectors.collect(INCIDENTS) == [incident_field_selector()]


def _with_levels(levels: list[object]) -> dict[str, Any]:
    """Handler kwargs whose policies index holds policy `p` of namespace shop."""
    policy = SimpleNamespace(
        candidate=SimpleNamespace(name="p", spec=SimpleNamespace(escalation=levels))
    )
    return {POLICIES: {"shop": [policy]}, CONTENDERS: {}}


def _notice_wanted(spec: dict[str, Any], status: dict[str, Any], kwargs: dict[str, Any]) -> bool:
    body = kopf.Body({"metadata": {"name": "i", "uid": "u"}, "spec": spec, "status": status})
    return needs_notice(body.spec, body.status, "shop", **kwargs)


def test_a_resolved_incident_under_escalation_levels_is_settled_by_the_escalation_timer() -> None:
    """The escalation timer runs beside the tick from the same body: a page it sends while
    the tick resolves must not lose its resolved notice, so the tick settles a Resolved
    Incident only when its policy pages nobody; otherwise the escalation timer does."""
    spec = {"target": {"kind": "Deployment", "name": "web"}}
    resolved = {"phase": "Resolved", "detectedAt": NOW, "policy": "p"}
    paging, silent = _with_levels([object()]), _with_levels([])
    assert not settled_by_the_tick(spec, resolved, "shop", paging)
    assert _notice_wanted(spec, resolved, paging)
    assert settled_by_the_tick(spec, resolved, "shop", silent)
    assert not _notice_wanted(spec, resolved, silent)
    # Once settled (by that timer's write), no filter admits it any more.
    settled = {**resolved, "settled": True}
    assert not _notice_wanted(spec, settled, paging)
    # Failed, or a drill, pages nobody: the tick settles it whatever the policy.
    assert settled_by_the_tick(spec, {**resolved, "phase": "Failed"}, "shop", paging)
    drill = {**spec, "source": {"type": "drill"}}
    assert settled_by_the_tick(drill, resolved, "shop", paging)
