"""Fixtures for every tier, as plugins from tests/support/fixtures: one real control plane per
session (or the cluster MITIGATOR_TEST_KUBECONFIG names) with a fresh namespace per test, the
session's Prometheus, Alertmanager and operator, and the simulated service of the e2e tier."""

pytest_plugins = [
    "tests.support.fixtures.cluster",
    "tests.support.fixtures.world",
    "tests.support.fixtures.service",
]


def pytest_configure() -> None:
    # Every process a session starts (control planes, Prometheus, Alertmanager) dies with it,
    # even when the session itself is killed before its teardown (CI's timeout, a kill -9).
    from localkube.processes import tie_children_to_this_process

    tie_children_to_this_process()
