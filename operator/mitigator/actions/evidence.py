"""Evidence before destruction (the guide's security runbook: "preserve evidence"): before a
step replaces or removes pods, the last lines of each pod's logs, the pods' recent Events and
the target's spec go into a ConfigMap the Incident owns (deleted with it), bounded in size so
that it always fits the API server's limit."""

from __future__ import annotations

import contextlib
import copy
import json
import re

from mitigator import API_GROUP, API_VERSION
from mitigator.actions.change import Change
from mitigator.k8s import AlreadyExists, KubeClient
from mitigator.models import ActionType, JsonObject, format_timestamp
from mitigator.models.actions import POD_REPLACING_ACTIONS
from mitigator.models.evidence import PodLog, TargetRead
from mitigator.models.execution import ActionRequest

# Well below a ConfigMap's 1 MiB: the spec and Events first, logs in the room that is left.
MAX_BYTES = 512 * 1024
MAX_BYTES_PER_LOG = 32 * 1024
EVIDENCE_LABEL = f"{API_GROUP}/evidence-of"


def always_destroys_pods(action_type: ActionType) -> bool:
    """Whether the step replaces or removes pods whatever its change turns out to be: its
    evidence can be read while the change is built."""
    return action_type in POD_REPLACING_ACTIONS


def destroys_pods(action_type: ActionType, change: Change) -> bool:
    """Whether the step replaces or removes pods: then their evidence is kept first. A scale
    down removes some (a scale up, or a floor raised on an autoscaler, removes none)."""
    if action_type in POD_REPLACING_ACTIONS:
        return True
    if action_type is ActionType.SCALE and "replicas" in change.after:
        return int(change.after["replicas"]) < int(change.before.get("replicas", 0))
    return False


def evidence_name(incident: str, action_id: str) -> str:
    """`<incident>-evidence-<step>`, within a ConfigMap name's 253 characters."""
    suffix = f"-evidence-{action_id}"
    return f"{incident[: 253 - len(suffix)]}{suffix}"


# Env values that look like credentials are not copied into a ConfigMap (anyone who may read
# ConfigMaps would read them); the name stays, so the evidence shows the variable was set.
_SECRET_NAME = re.compile(r"(?i)(secret|token|passw|credential|api_?key|private)")


def redacted_spec(spec: JsonObject) -> JsonObject:
    clean = copy.deepcopy(spec)
    pod = (clean.get("template") or {}).get("spec") or {}
    for container in [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]:
        for variable in container.get("env") or []:
            if "value" in variable and _SECRET_NAME.search(str(variable.get("name", ""))):
                variable["value"] = "[redacted]"
    return clean


def _event_line(event: JsonObject) -> str:
    involved = event.get("involvedObject") or {}
    at = event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
    return (
        f"{at} {event.get('type', '')} {involved.get('kind')}/{involved.get('name')} "
        f"{event.get('reason', '')} (x{event.get('count') or 1}): {event.get('message', '')}"
    )


def _tail(text: str, limit: int) -> str:
    """The end of `text` within `limit` bytes, cut at a line start."""
    data = text.encode()
    if len(data) <= limit:
        return text
    cut = data[-limit:].decode("utf-8", errors="ignore")
    return "[earlier lines cut to fit]\n" + cut[cut.find("\n") + 1 :]


def build_config_map(
    request: ActionRequest,
    *,
    deployment: JsonObject,
    pods: list[JsonObject],
    logs: list[PodLog],
    events: list[JsonObject],
) -> JsonObject:
    """The ConfigMap (pure): `spec.json` (the target's spec), `pods.txt`, `events.txt`, then
    one `<pod>.<container>.log` per container while there is room; what did not fit is named
    in `omitted.txt`."""
    meta = deployment["metadata"]
    events_text = "\n".join(_event_line(e) for e in events) + "\n" if events else ""
    pod_lines = [
        f"{p['metadata']['name']} phase={(p.get('status') or {}).get('phase')} "
        f"node={(p.get('spec') or {}).get('nodeName')}"
        for p in pods
    ]
    data: dict[str, str] = {
        "spec.json": json.dumps(
            redacted_spec(deployment.get("spec") or {}), indent=1, sort_keys=True
        ),
        "pods.txt": "\n".join(pod_lines) + "\n" if pod_lines else "",
        "events.txt": _tail(events_text, MAX_BYTES // 4),
    }
    used = sum(len(v.encode()) for v in data.values())
    omitted = []
    for log in logs:
        key = f"{log.pod}.{log.container}.log"
        text = _tail(log.text, MAX_BYTES_PER_LOG)
        if used + len(text.encode()) > MAX_BYTES:
            omitted.append(key)
            continue
        data[key] = text
        used += len(text.encode())
    if omitted:
        data["omitted.txt"] = "no room left for: " + ", ".join(omitted) + "\n"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": evidence_name(request.incident_name, request.action_id),
            "namespace": meta["namespace"],
            "labels": {EVIDENCE_LABEL: request.incident_name},
            "annotations": {
                f"{API_GROUP}/action": f"{request.action_id} ({request.action_type})",
                f"{API_GROUP}/target": f"Deployment/{meta['name']}",
                f"{API_GROUP}/captured-at": format_timestamp(request.now),
            },
            # Owned by the Incident: kept as long as its record is, deleted with it.
            "ownerReferences": [
                {
                    "apiVersion": f"{API_GROUP}/{API_VERSION}",
                    "kind": "Incident",
                    "name": request.incident_name,
                    "uid": request.incident_uid,
                }
            ],
        },
        "data": data,
    }


class Capture:
    """An evidence capture in flight: the Events of the Deployment and of its pods, and the
    pods' logs, read in the background (k8s/evidence_reads.py) from the moment the first tick
    asked for them (`TargetRead.prefetch_evidence`), or from now; the step's own reads (a
    rollback's ReplicaSets) go on meanwhile. `keep` waits for them and saves the ConfigMap.
    The pods are those the tick listed (for classification) if it did."""

    def __init__(self, kube: KubeClient, request: ActionRequest, read: TargetRead) -> None:
        self._kube, self._request, self._read = kube, request, read
        self._reads = read.evidence()

    def keep(self) -> str:
        """Save the evidence (once its reads are in); its ConfigMap's name. A capture already
        made (an earlier run that stopped before its write) is kept, not replaced: it saw
        the pods before the change. Raises (ApiError, NotFound) if the pods could not be
        listed."""
        events: list[JsonObject] = []
        logs: list[PodLog] = []
        if self._reads is not None:
            try:
                events, logs = self._reads.result()
            finally:
                self.drop()
        deployment = self._read.deployment
        body = build_config_map(
            self._request,
            deployment=deployment,
            pods=self._read.pods,
            logs=logs,
            events=events,
        )
        with contextlib.suppress(AlreadyExists):
            self._kube.create_config_map(str(deployment["metadata"]["namespace"]), body)
        return str(body["metadata"]["name"])

    def drop(self) -> None:
        """Not needed after all (the step was refused): let the reads in flight finish."""
        if self._reads is not None:
            self._reads.drop()


def capture(kube: KubeClient, request: ActionRequest, read: TargetRead) -> str:
    """Save the evidence now (see `Capture`); its ConfigMap's name."""
    return Capture(kube, request, read).keep()
