"""The `mitigator` command line."""

from __future__ import annotations

import argparse
import os
import sys


def _run(args: argparse.Namespace) -> int:
    import kopf  # noqa: PLC0415 - only `run` needs kopf; --help stays fast

    import mitigator.handlers  # noqa: F401, PLC0415 - registers the handlers

    if args.prometheus_url:
        os.environ["MITIGATOR_PROMETHEUS_URL"] = args.prometheus_url
    kopf.run(
        standalone=args.standalone,
        clusterwide=not args.namespace,
        namespaces=args.namespace or [],
        liveness_endpoint=args.liveness,
        priority=args.priority,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mitigator",
        description=(
            "Kubernetes incident mitigation: classify, mitigate, verify, and record every step "
            "in the Incident's status."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run the operator")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    run.add_argument(
        "--standalone",
        action="store_true",
        help="skip peering (single instance); without it, kopf's peering resources must exist",
    )
    run.add_argument("--priority", type=int, default=0, help="peering priority")
    run.add_argument("--liveness", default=None, help="e.g. http://0.0.0.0:8080/healthz")
    run.add_argument(
        "--prometheus-url",
        default=os.environ.get("MITIGATOR_PROMETHEUS_URL"),
        help="default Prometheus for policies that name none (env MITIGATOR_PROMETHEUS_URL)",
    )
    run.set_defaults(handler=_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
