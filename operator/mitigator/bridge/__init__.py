"""The Alertmanager-to-Incident bridge: Alertmanager webhook (version 4) in, Incidents out.

- `payload`: the strict parser of the webhook body (pure).
- `mapping`: alert → target, Incident names, bodies and merges (pure).
- `config`: the bridge's settings, from the environment or the command line (pure).
- `service`: the I/O: one Incident per alert group and target, through `mitigator.k8s`.
- `server`: the aiohttp application (`POST /api/v1/alerts`, `/healthz`, `/metrics`).

This package's `__init__` imports nothing on purpose: importing the pure modules must not
pull in aiohttp or the kubernetes client.
"""
