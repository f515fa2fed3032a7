"""The simulated service's model: what is deployed decides what its metrics say."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

PATH = Path(__file__).resolve().parents[2] / "examples/simulated_service/luminamind_sim.py"


@pytest.fixture(scope="module")
def sim() -> ModuleType:
    spec = importlib.util.spec_from_file_location("luminamind_sim", PATH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["luminamind_sim"] = module
    spec.loader.exec_module(module)
    return module


NOW = datetime(2026, 1, 1, tzinfo=UTC)


def deployed(sim: ModuleType, **changes: object) -> object:
    base = {
        "ready": 3,
        "desired": 3,
        "image": "r/luminamind:1.4.2",
        "env": {},
        "annotations": {},
        "rolled_out_at": NOW,
    }
    return sim.Deployed(**{**base, **changes})


def test_healthy_by_default(sim: ModuleType) -> None:
    state = sim.behaviour(deployed(sim), bad_tags=frozenset(), now=NOW)
    assert state.error_rate < 0.005 and state.latency_seconds * 1.35 < 5


def test_a_bad_tag_errors_and_a_rollback_clears_it(sim: ModuleType) -> None:
    bad = sim.behaviour(
        deployed(sim, image="r/luminamind:1.5.0-bad"), bad_tags=frozenset(), now=NOW
    )
    listed = sim.behaviour(
        deployed(sim, image="r/luminamind:2.0"), bad_tags=frozenset({"2.0"}), now=NOW
    )
    assert bad.error_rate > 0.05 and listed.error_rate > 0.05


def test_scaling_up_lowers_latency_under_a_surge(sim: ModuleType) -> None:
    surge = {"sim.luminamind.io/traffic": "5"}
    before = sim.behaviour(deployed(sim, annotations=surge), bad_tags=frozenset(), now=NOW)
    after = sim.behaviour(deployed(sim, annotations=surge, ready=5), bad_tags=frozenset(), now=NOW)
    assert before.latency_seconds * 1.35 > 10, "p95 above HighLatency's 10s"
    assert after.latency_seconds * 1.35 < 5, "p95 within the 5s SLA after +2 replicas"


def test_a_leak_grows_until_a_restart(sim: ModuleType) -> None:
    leak = {"sim.luminamind.io/leak": "true"}
    old = sim.behaviour(
        deployed(sim, annotations=leak, rolled_out_at=NOW - timedelta(minutes=5)),
        bad_tags=frozenset(),
        now=NOW,
    )
    fresh = sim.behaviour(
        deployed(sim, annotations=leak, rolled_out_at=NOW), bad_tags=frozenset(), now=NOW
    )
    assert (
        old.memory_bytes > fresh.memory_bytes and old.latency_seconds > fresh.latency_seconds + 10
    )


def test_disabling_web_search_stops_its_errors(sim: ModuleType) -> None:
    down = {"sim.luminamind.io/web-search": "down"}
    failing = sim.behaviour(deployed(sim, annotations=down), bad_tags=frozenset(), now=NOW)
    disabled = sim.behaviour(
        deployed(sim, annotations=down, env={"DISABLE_WEB_SEARCH": "true"}),
        bad_tags=frozenset(),
        now=NOW,
    )
    assert failing.error_rate > 0.05 and failing.web_search_failing
    assert disabled.error_rate < 0.005 and not disabled.web_search_failing


def test_no_ready_replica_is_an_outage(sim: ModuleType) -> None:
    assert sim.behaviour(deployed(sim, ready=0), bad_tags=frozenset(), now=NOW).error_rate == 1.0
    outage = {"sim.luminamind.io/outage": "true"}
    assert (
        sim.behaviour(deployed(sim, annotations=outage), bad_tags=frozenset(), now=NOW).error_rate
        == 1.0
    )


def _samples(sim: ModuleType, simulator: object, name: str) -> dict[tuple[str, ...], float]:
    registry = simulator.registry  # type: ignore[attr-defined]
    return {
        tuple(sample.labels.get(k, "") for k in ("pod", "status")): sample.value
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == name
    }


def test_series_are_per_pod_born_with_it_and_gone_with_it(sim: ModuleType) -> None:
    simulator = sim.Simulator(namespace="prod", deployment="web", bad_tags=frozenset(), seed=1)
    clean = "r/luminamind:1.4.2-clean"

    def pods(*names: str) -> tuple[object, ...]:
        return tuple(sim.Pod(n, True, NOW, 0, clean) for n in names)

    simulator.step(deployed(sim, image=clean, pods=pods("web-a", "web-b")), seconds=1, now=NOW)
    requests = _samples(sim, simulator, "luminamind_requests_total")
    # Both pods served; no error, so no 5xx series at all (born only at a first 5xx).
    assert set(requests) == {("web-a", "200"), ("web-b", "200")}
    simulator.step(deployed(sim, image=clean, pods=pods("web-c")), seconds=1, now=NOW)
    requests = _samples(sim, simulator, "luminamind_requests_total")
    assert set(requests) == {("web-c", "200")}  # the old pods' series left with them
    assert requests[("web-c", "200")] <= 1.2 * sim.BASE_RPS  # a new pod counts from zero
    simulator.step(deployed(sim, ready=0, pods=()), seconds=1, now=NOW)
    assert _samples(sim, simulator, "luminamind_requests_total") == {}
