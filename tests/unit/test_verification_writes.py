"""A verification window writes the Incident's status when something a user relies on
changes, not on every tick: each write is a watch event for every watcher of Incidents, and a
5-minute window at a 2 s tick would otherwise be ~150 of them per incident. What the status
shows must still never hide a verdict, missing evidence or the values that reached the
verdict."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from mitigator.models import IncidentStatus, Phase, VerificationCheck
from tests.unit.factories import incident, policy
from tests.unit.fake_world import Driver, FakeWorld, with_policy

TICK = timedelta(seconds=2)
# Longer than the ticks a test makes without a change, shorter than the refresh (30 s).
WINDOW = {"window": "60s", "timeout": "5m"}


def _in_window(**verification: Any) -> tuple[FakeWorld, Driver]:
    """An incident whose step was applied and whose window has opened on a passing checklist."""
    world = with_policy(
        FakeWorld(error_rate=0.2),
        policy(
            rules=[{"name": "p1", "actions": [{"rollback": {}}]}],
            verification={**WINDOW, **verification},
        ),
    )
    driver = Driver(world, incident())
    assert driver.tick().phase is Phase.VERIFYING  # applied
    world.error_rate, world.p95_seconds = 0.001, 0.5
    status = driver.tick(after=TICK)
    assert status.verification is not None and status.verification.window_started_at is not None
    assert status.verification.passed
    return world, driver


def _wire(status: IncidentStatus) -> dict[str, Any]:
    return status.to_api_dict()


def _check(status: IncidentStatus, name: str) -> VerificationCheck:
    assert status.verification is not None
    return next(check for check in status.verification.checks if check.name == name)


def test_ticks_that_change_no_verdict_leave_the_status_as_it_is() -> None:
    world, driver = _in_window()
    opened = _wire(driver.status)
    for p95 in (0.6, 0.55, 0.7, 0.52, 0.61):  # the values move, every check keeps passing
        world.p95_seconds = p95
        status = driver.tick(after=TICK)
        assert _wire(status) == opened, "a tick that changed no verdict wrote the status"
        assert driver.last is not None and driver.last.events == []


def test_the_observed_values_are_refreshed_at_most_every_refresh_interval() -> None:
    world, driver = _in_window()
    opened_at = driver.status.verification.at  # type: ignore[union-attr]
    writes = []
    for i in range(20):  # 40 s of ticks, the values moving every tick
        world.p95_seconds = 0.5 + i / 100
        before = _wire(driver.status)
        status = driver.tick(after=TICK)
        if _wire(status) != before:
            writes.append(status.verification.at)  # type: ignore[union-attr]
    assert writes == [opened_at + timedelta(seconds=30)]
    assert _check(driver.status, "p95Latency").observed == "0.64s"  # as of that refresh


def test_a_check_that_starts_failing_is_recorded_at_once() -> None:
    world, driver = _in_window()
    driver.tick(after=TICK)
    world.error_rate = 0.2
    status = driver.tick(after=TICK)
    assert status.verification is not None
    assert status.verification.passed is False and status.verification.passing_since is None
    assert status.verification.at == driver.now
    assert _check(status, "errorRate").passed is False
    assert _check(status, "errorRate").observed == "20%"
    failing = _wire(status)
    world.error_rate = 0.25  # still failing: nothing new to say
    assert _wire(driver.tick(after=TICK)) == failing
    world.error_rate = 0.001  # and passing again, at once too: the window restarts from here
    status = driver.tick(after=TICK)
    assert status.verification.passed and status.verification.passing_since == driver.now  # type: ignore[union-attr]


def test_missing_evidence_is_recorded_at_once_even_on_checks_already_failing() -> None:
    # Without the alerts check, which would flip from passing when Prometheus goes: here no
    # verdict changes, only the reason (a value seen, then none).
    world, driver = _in_window(requireNoFiringAlerts=False)
    world.error_rate, world.p95_seconds = 0.2, 30.0  # failing on the data...
    driver.tick(after=TICK)
    assert _check(driver.status, "errorRate").observed == "20%"
    world.prometheus_down = True  # ...then on no data: the same verdicts, another reason
    status = driver.tick(after=TICK)
    assert status.verification is not None and status.verification.at == driver.now
    for name in ("errorRate", "p95Latency"):
        check = _check(status, name)
        assert check.passed is False
        assert check.observed is not None and check.observed.startswith("unreachable")
        assert "unknown" in (check.message or "")
    blind = _wire(status)
    assert _wire(driver.tick(after=TICK)) == blind  # still down: said once, not every tick
    world.prometheus_down = False  # the data back, still failing: recorded at once as well
    status = driver.tick(after=TICK)
    assert _check(status, "errorRate").observed == "20%"
    assert status.verification.at == driver.now  # type: ignore[union-attr]


def test_the_verdict_is_written_with_the_values_that_reached_it() -> None:
    world, driver = _in_window(window="10s")
    world.p95_seconds = 0.8  # not written on its own: no verdict changed
    status = driver.tick(after=TICK)
    assert _check(status, "p95Latency").observed == "0.5s"
    while status.phase is Phase.VERIFYING:
        world.p95_seconds += 0.1
        status = driver.tick(after=TICK)
    assert status.phase is Phase.RESOLVED
    assert status.verification is not None and status.verification.at == driver.now
    assert _check(status, "p95Latency").observed == f"{world.p95_seconds:.3g}s"


def test_a_window_that_times_out_escalates_with_the_values_that_failed() -> None:
    world, driver = _in_window(window="60s", timeout="20s")
    world.error_rate = 0.2
    status = driver.tick(after=TICK)
    failing, written = _wire(status), 0
    while status.phase is Phase.VERIFYING:
        written += _wire(status) != failing
        world.error_rate += 0.01  # failing on and on: no verdict changes until the timeout
        status = driver.tick(after=TICK)
    assert written == 0
    assert status.phase is Phase.ESCALATED  # the only step failed: the ladder is exhausted
    assert status.verification is not None and status.verification.at == driver.now
    assert _check(status, "errorRate").observed == f"{world.error_rate * 100:.3g}%"
