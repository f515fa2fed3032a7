"""What the integration, end-to-end and benchmark tiers share, each thing in one place.

Helpers are plain modules, imported by the tests that use them:

- ``kube``: Deployment manifests, rollout waits, test namespaces;
- ``objects``: Incident and MitigationPolicy manifests, ``Resources`` (create, read, wait);
- ``responder``: a thread that sets the test signals from what a Deployment runs;
- ``world``: the test signals exporter, the operator's bridge address, the operator's
  environment;
- ``bridge``: a bridge serving over real HTTP, and Alertmanager webhook payloads;
- ``service``: the simulated LuminaMind service of one end-to-end test.

Fixtures come as pytest plugins (``pytest_plugins`` in tests/conftest.py and
benchmarks/conftest.py): ``tests.support.fixtures.cluster`` (the control plane, an API client,
a namespace per test), ``.world`` (CRDs, Prometheus, Alertmanager, the operator), ``.service``
(the simulated service). No test module imports another test module.
"""
