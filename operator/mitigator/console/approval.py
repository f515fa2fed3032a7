"""`mitigator approve` and `mitigator resolve`: the spec change a person makes, with their
name as the API server sees it (SelfSubjectReview) and the time. The API server checks both
the name and, for approving, the `approve` verb (config/approval/)."""

from __future__ import annotations

import argparse

from mitigator.console.output import dump
from mitigator.console.session import CommandError, now, open_session
from mitigator.k8s import KubeClient
from mitigator.models import JsonObject, Phase, format_timestamp

_TERMINAL = {Phase.RESOLVED.value, Phase.FAILED.value}


def approve(args: argparse.Namespace) -> int:
    connection, namespace = open_session(args)
    kube = connection.kube
    incident = kube.read_incident(namespace, args.incident)
    spec, phase = incident["spec"], (incident.get("status") or {}).get("phase")
    if spec.get("approved"):
        return _report(args, incident, f"already approved by {spec.get('approvedBy') or '-'}")
    if phase in _TERMINAL:
        raise CommandError(f"Incident {namespace}/{args.incident} is {phase}: nothing to approve")
    user = _whoami(kube)
    updated = kube.patch_incident(
        namespace,
        args.incident,
        {
            "metadata": {"resourceVersion": incident["metadata"]["resourceVersion"]},
            "spec": {"approved": True, "approvedBy": user, "approvedAt": format_timestamp(now())},
        },
    )
    return _report(args, updated, f"approved by {user}")


def resolve(args: argparse.Namespace) -> int:
    connection, namespace = open_session(args)
    kube = connection.kube
    incident = kube.read_incident(namespace, args.incident)
    spec, phase = incident["spec"], (incident.get("status") or {}).get("phase")
    if phase in _TERMINAL:
        return _report(args, incident, f"already {phase}")
    if spec.get("resolve"):
        return _report(args, incident, f"resolve already asked by {spec.get('resolvedBy') or '-'}")
    user = _whoami(kube)
    updated = kube.patch_incident(
        namespace,
        args.incident,
        {
            "metadata": {"resourceVersion": incident["metadata"]["resourceVersion"]},
            "spec": {"resolve": True, "resolvedBy": user, "resolvedAt": format_timestamp(now())},
        },
    )
    return _report(args, updated, f"resolve asked by {user}; the operator closes it")


def _whoami(kube: KubeClient) -> str:
    user = kube.whoami()
    if not user:
        raise CommandError("the API server did not say who you are (SelfSubjectReview)")
    return user


def _report(args: argparse.Namespace, incident: JsonObject, message: str) -> int:
    meta = incident["metadata"]
    if args.output:
        dump(incident, args.output)
    else:
        print(f"incident {meta['namespace']}/{meta['name']}: {message}")
    return 0
