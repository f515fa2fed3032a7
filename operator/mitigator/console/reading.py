"""`mitigator incidents` and `mitigator describe`."""

from __future__ import annotations

import argparse
import sys

from mitigator.console.output import Style, dump, table
from mitigator.console.session import CommandError, now, open_session
from mitigator.console.views import LIST_HEADER, describe, list_entry, list_row, when
from mitigator.k8s import NotFound


def list_incidents(args: argparse.Namespace) -> int:
    connection, namespace = open_session(args)
    everywhere = bool(args.all_namespaces)
    try:
        incidents = connection.kube.list_incidents(None if everywhere else namespace)
    except NotFound as exc:  # a list is never missing: the kind is
        raise CommandError(
            "the API server does not serve Incidents: is the CRD "
            "incidents.mitigator.luminamind.io installed (kubectl apply -f crds/)?"
        ) from exc
    incidents.sort(
        key=lambda i: when(i["metadata"].get("creationTimestamp")) or now(), reverse=True
    )
    if args.output:
        dump([list_entry(i) for i in incidents], args.output)
        return 0
    if not incidents:
        where = "any namespace" if everywhere else f"namespace {namespace}"
        print(f"No incidents in {where}.", file=sys.stderr)
        return 0
    header = ("NAMESPACE", *LIST_HEADER) if everywhere else LIST_HEADER
    moment = now()
    rows = [list_row(i, now=moment, with_namespace=everywhere) for i in incidents]
    print(table(rows, style=Style.for_stream(sys.stdout), header=header))
    return 0


def describe_incident(args: argparse.Namespace) -> int:
    connection, namespace = open_session(args)
    incident = connection.kube.read_incident(namespace, args.incident)
    if args.output:
        dump(incident, args.output)
        return 0
    sys.stdout.write(describe(incident, style=Style.for_stream(sys.stdout)))
    return 0
