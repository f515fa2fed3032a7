"""The Alertmanager-to-Incident bridge: Alertmanager webhook (version 4) in, Incidents out.

Pure (no aiohttp, no kubernetes client, no kopf):

- `payload`: the strict parser of the webhook body.
- `targets`: which Deployment (or pod) an alert names, and where Incidents may be created
  (never in the control plane's namespaces).
- `identity`: Incident names, group hashes, labels and annotations.
- `limits`: what an Incident stores of a group (labels per alert, label sizes, alerts), and
  the per-group count of what it leaves out.
- `records`: merging, capping and resolving the alerts an Incident records.
- `grouping`: a payload → one `TargetAlerts` (the material of one Incident) per target.
- `episodes`: given a group's Incidents and its target's open ones, create, patch (or attach
  to another open Incident of the target), keep or skip; the next episode.
- `notes`: why an alert did not become part of an Incident; clipping what a sender wrote.
- `config`: the bridge's settings, from the environment and the command line.

With I/O:

- `service`: a payload → its answer (200, 413, 422 or 503), every alert accounted for.
- `upsert`: one target's alerts into its Incident, through `mitigator.k8s`.
- `upsert_batch`: several alert groups of one target in as few writes as they allow.
- `commits`: the group commit: the requests for a target that wait while it is written.
- `failures`: how the API server failed: 503 (retry) or too large to store (413).
- `owners`: a pod → its Deployment (Pod → ReplicaSet → Deployment).
- `server`: the aiohttp application (`POST /api/v1/alerts`, `/healthz`, `/metrics`).
- `telemetry`: the bridge's Prometheus metrics.

This package's `__init__` imports nothing on purpose: importing the pure modules must not
pull in aiohttp or the kubernetes client.
"""
