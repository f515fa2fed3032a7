"""The Alertmanager-to-Incident bridge: Alertmanager webhook (version 4) in, Incidents out.

Pure (no aiohttp, no kubernetes client, no kopf):

- `payload`: the strict parser of the webhook body.
- `targets`: which Deployment an alert names, and where Incidents may be created.
- `identity`: Incident names, group hashes, labels and annotations.
- `records`: merging, capping and resolving the alerts an Incident records.
- `grouping`: a payload → one `TargetAlerts` (the material of one Incident) per target.
- `episodes`: given a group's Incidents, create, patch, keep or skip; the next episode.
- `notes`: why an alert did not become part of an Incident.
- `config`: the bridge's settings, from the environment and the command line.

With I/O:

- `service`: one Incident per alert group and target, through `mitigator.k8s`.
- `server`: the aiohttp application (`POST /api/v1/alerts`, `/healthz`, `/metrics`).
- `telemetry`: the bridge's Prometheus metrics.

This package's `__init__` imports nothing on purpose: importing the pure modules must not
pull in aiohttp or the kubernetes client.
"""
