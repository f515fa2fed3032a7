"""Evidence before destruction (the guide's security runbook: "preserve evidence"): before a
step replaces or removes pods, the last lines of each pod's logs, the pods' recent Events and
the target's spec go into a ConfigMap the Incident owns (deleted with it), bounded in size so
that it always fits the API server's limit."""

from __future__ import annotations

import contextlib
import copy
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from mitigator import API_GROUP, API_VERSION
from mitigator.actions.change import Change
from mitigator.k8s import AlreadyExists, ApiError, KubeClient, NotFound
from mitigator.models import ActionType, JsonObject, format_timestamp
from mitigator.models.evidence import TargetRead
from mitigator.models.execution import ActionRequest

LOG_LINES = 100  # per container
EVENTS_PER_OBJECT = 20
# Well below a ConfigMap's 1 MiB: the spec and Events first, logs in the room that is left.
MAX_BYTES = 512 * 1024
MAX_BYTES_PER_LOG = 32 * 1024
EVIDENCE_LABEL = f"{API_GROUP}/evidence-of"
# Reads of Events and logs in flight at once during one capture.
READERS = 4


@dataclass(frozen=True)
class PodLog:
    pod: str
    container: str
    text: str  # or why it could not be read


# The steps that replace pods (rollback, restart) or remove them (maintenance scales to 0), and
# isolate (the guide's security runbook: preserve evidence, then isolate).
_REPLACING = frozenset(
    {ActionType.ROLLBACK, ActionType.RESTART, ActionType.MAINTENANCE, ActionType.ISOLATE}
)


def always_destroys_pods(action_type: ActionType) -> bool:
    """Whether the step replaces or removes pods whatever its change turns out to be: its
    evidence can be read while the change is built."""
    return action_type in _REPLACING


def destroys_pods(action_type: ActionType, change: Change) -> bool:
    """Whether the step replaces or removes pods: then their evidence is kept first. A scale
    down removes some (a scale up, or a floor raised on an autoscaler, removes none)."""
    if action_type in _REPLACING:
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
    pods' logs, read side by side in the background from the moment it starts (the step's
    own reads, e.g. a rollback's ReplicaSets, go on meanwhile); `keep` waits for them and
    saves the ConfigMap. The pods are those the tick listed (for classification) if it did.
    Raises (ApiError, NotFound) at the start if the pods cannot be listed."""

    def __init__(self, kube: KubeClient, request: ActionRequest, read: TargetRead) -> None:
        self._kube, self._request, self._read = kube, request, read
        deployment = read.deployment
        self._namespace = namespace = deployment["metadata"]["namespace"]
        pods = self._pods = read.pods
        objects = [("Deployment", deployment["metadata"]["name"])] + [
            ("Pod", pod["metadata"]["name"]) for pod in pods
        ]
        containers = [
            (pod["metadata"]["name"], container["name"])
            for pod in pods
            for container in (pod.get("spec") or {}).get("containers") or []
        ]

        def events_of(kind_and_name: tuple[str, str]) -> list[JsonObject]:
            kind, object_name = kind_and_name
            return kube.events_of(namespace, kind=kind, name=object_name)[-EVENTS_PER_OBJECT:]

        self._readers = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="evidence")
        self._events = [self._readers.submit(events_of, each) for each in objects]
        self._logs = [self._readers.submit(self._log_of, each) for each in containers]

    def _log_of(self, pod_and_container: tuple[str, str]) -> PodLog:
        pod_name, container = pod_and_container
        try:
            text = self._kube.pod_log(
                self._namespace, pod_name, container=container, tail_lines=LOG_LINES
            )
        except (ApiError, NotFound) as exc:
            # A pod without logs (not started, node gone) is evidence too: say so.
            text = f"[logs unavailable: {exc}]\n"
        return PodLog(pod_name, container, text)

    def keep(self) -> str:
        """Save the evidence (once its reads are in); its ConfigMap's name. A capture already
        made (an earlier run that stopped before its write) is kept, not replaced: it saw
        the pods before the change."""
        try:
            events = [event for listed in self._events for event in listed.result()]
            logs = [log.result() for log in self._logs]
        finally:
            self.drop()
        body = build_config_map(
            self._request,
            deployment=self._read.deployment,
            pods=self._pods,
            logs=logs,
            events=events,
        )
        with contextlib.suppress(AlreadyExists):
            self._kube.create_config_map(self._namespace, body)
        return str(body["metadata"]["name"])

    def drop(self) -> None:
        """Not needed after all (the step was refused): let the reads in flight finish."""
        self._readers.shutdown(wait=False, cancel_futures=True)


def capture(kube: KubeClient, request: ActionRequest, read: TargetRead) -> str:
    """Save the evidence now (see `Capture`); its ConfigMap's name."""
    return Capture(kube, request, read).keep()
