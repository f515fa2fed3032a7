"""Benchmarks run against the same local control plane as the tests (`make bench`)."""

pytest_plugins = ["tests.support.fixtures.cluster", "tests.support.fixtures.world"]
