"""`mitigator drill POLICY --target DEPLOY`: the guide's drill, rehearsed against the real
operator. A dry-run Incident (source: drill) is created under the policy; the operator
classifies it and records the plan it would run, changing nothing and paging nobody; the
command prints that plan and why. The Incident stays as the drill's record."""

from __future__ import annotations

import argparse
import sys
import time

from mitigator.console.output import Style, dump
from mitigator.console.session import CommandError, open_session
from mitigator.k8s import KubeClient
from mitigator.models import JsonObject

_DONE = {"Escalated", "Resolved", "Failed"}


def drill_incident(policy: str, target: str) -> JsonObject:
    return {
        "apiVersion": "mitigator.luminamind.io/v1alpha1",
        "kind": "Incident",
        "metadata": {"generateName": f"drill-{target[:40]}-"},
        "spec": {
            "target": {"kind": "Deployment", "name": target},
            "title": f"drill: policy {policy} on Deployment {target}",
            "source": {"type": "drill"},
            "policyRef": {"name": policy},
            "dryRun": True,
        },
    }


def _planned(incident: JsonObject) -> bool:
    status = incident.get("status") or {}
    return status.get("phase") in _DONE


def wait_planned(kube: KubeClient, namespace: str, name: str, *, timeout: float) -> JsonObject:
    deadline = time.monotonic() + timeout
    while True:
        incident = kube.read_incident(namespace, name)
        if _planned(incident):
            return incident
        if time.monotonic() >= deadline:
            raise CommandError(
                f"no plan recorded within {timeout:.0f}s: is the operator running for namespace "
                f"{namespace}? The drill Incident {name} stays (kubectl delete inc {name} -n "
                f"{namespace})"
            )
        time.sleep(0.5)  # a command line waits; the operator's handlers never do


def plan_text(incident: JsonObject, policy: JsonObject, *, style: Style) -> str:
    meta, spec, status = incident["metadata"], incident["spec"], incident.get("status") or {}
    classification = status.get("classification") or {}
    lines = [
        style.bold(
            f"Drill of policy {policy['metadata']['name']} on Deployment "
            f"{spec['target']['name']} (Incident {meta['namespace']}/{meta['name']})"
        ),
        "Dry run: nothing was changed, nobody was paged.",
        "",
        f"Severity: {style.tone(str(status.get('severity') or '-'))}"
        f" (classified {classification.get('severity', '-')})",
    ]
    lines += [f"  - {reason}" for reason in classification.get("reasons") or []]
    actions = status.get("actions") or []
    rule = status.get("rule")
    lines += ["", f"Rule: {rule}" if rule else "Rule: none matched"]
    if actions:
        lines.append("Plan (one step at a time, each verified before the next):")
        for number, action in enumerate(actions, start=1):
            params = ", ".join(f"{k}={v}" for k, v in (action.get("params") or {}).items())
            lines.append(f"  {number}. {action['id']}: {action['type']}({params})")
    else:
        lines.append(f"No plan: {status.get('message') or '-'}")
    pspec = policy.get("spec") or {}
    guardrails = pspec.get("guardrails") or {}
    if guardrails.get("requireApprovalFor"):
        lines.append(f"Waits for approval before: {', '.join(guardrails['requireApprovalFor'])}")
    verification = pspec.get("verification") or {}
    if verification:
        lines.append(
            f"Verification: the checklist must hold for {verification.get('window', '-')}"
            f" within {verification.get('timeout', '-')} after each step"
        )
    for level in pspec.get("escalation") or []:
        lines.append(
            f"Escalation: level {level.get('level')} {level.get('name') or ''} after "
            f"{level.get('after')}".rstrip()
        )
    if pspec.get("revertOnResolve"):
        lines.append(f"Undone on resolve: {', '.join(pspec['revertOnResolve'])}")
    return "\n".join(lines) + "\n"


def drill(args: argparse.Namespace) -> int:
    connection, namespace = open_session(args)
    kube = connection.kube
    policy = kube.read_policy(namespace, args.policy)
    kube.read_deployment(namespace, args.target)
    created = kube.create_incident(namespace, drill_incident(args.policy, args.target))
    incident = wait_planned(kube, namespace, created["metadata"]["name"], timeout=args.timeout)
    if args.output:
        dump(incident, args.output)
    else:
        sys.stdout.write(plan_text(incident, policy, style=Style.for_stream(sys.stdout)))
    return 0
