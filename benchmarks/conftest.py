"""Benchmarks run against the same local control plane as the tests (`make bench`)."""

from tests.conftest import api_client, cluster, namespace  # noqa: F401 - fixtures
from tests.world import crds  # noqa: F401 - fixture
