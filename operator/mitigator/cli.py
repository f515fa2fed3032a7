"""The `mitigator` command line."""

from __future__ import annotations

import argparse
import sys

from mitigator.console import add_commands as add_incident_commands


def _run(args: argparse.Namespace) -> int:
    # kopf imports the kubernetes client (about 700 generated classes: 20 MB of this
    # process) whenever it is importable, and needs none of it; nor does the operator
    # (mitigator.k8s speaks HTTP itself). Marked missing before kopf is first imported.
    sys.modules.setdefault("kubernetes", None)  # type: ignore[arg-type]  # None: "not installed"
    import kopf  # noqa: PLC0415 - only `run` needs kopf; --help stays fast
    from pydantic import ValidationError  # noqa: PLC0415

    from mitigator.bridge.config import ConfigError  # noqa: PLC0415
    from mitigator.handlers import register  # noqa: PLC0415
    from mitigator.handlers.leadership import lease_namespace  # noqa: PLC0415
    from mitigator.handlers.startup import api_connections, watch_only  # noqa: PLC0415
    from mitigator.models import describe_validation_error  # noqa: PLC0415
    from mitigator.observability.logs import configure_logging, register_secret  # noqa: PLC0415
    from mitigator.settings import OperatorSettings  # noqa: PLC0415

    overrides: dict[str, object] = (
        {"prometheus_url": args.prometheus_url} if args.prometheus_url else {}
    )
    if args.leader_elect is not None:
        overrides["leader_election"] = args.leader_elect
    if args.lease_namespace:
        overrides["lease_namespace"] = args.lease_namespace
    if args.log_format:
        overrides["log_format"] = args.log_format
    if args.log_level:
        overrides["log_level"] = args.log_level.upper()
    try:
        settings = OperatorSettings(**overrides)  # type: ignore[arg-type]
        namespaces = args.namespace or []
        settings = settings.model_copy(
            update={
                "lease_namespace": lease_namespace(settings, namespaces),
                "api_connections": api_connections(settings, namespaces),
            }
        )
    except ValidationError as exc:
        print(f"mitigator run: {describe_validation_error(exc, root='settings')}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"mitigator run: {exc}", file=sys.stderr)
        return 2
    # kopf.run() configures no logging: without this every INFO record would be dropped.
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    if settings.bridge.token is not None:  # masked in every line, should anything quote it
        register_secret(settings.bridge.token.get_secret_value())
    _memory_debugging()
    registry = kopf.OperatorRegistry()
    register(registry, settings, namespaces=args.namespace or [])
    watch_only(registry, args.namespace or [])
    kopf.run(
        registry=registry,
        # kopf's peering decides nothing: every replica watches, the Lease says who acts.
        standalone=True,
        clusterwide=not args.namespace,
        namespaces=args.namespace or [],
        liveness_endpoint=args.liveness,
    )
    return 0


def _memory_debugging() -> None:
    """MITIGATOR_DEBUG_MEMORY=<file> (diagnosis only): every 20 s, CPython's allocator
    statistics (arenas, pools, free blocks: live objects against fragmentation) appended to
    <file>; with `<file>:trace`, also the memory Python holds and the 40 source lines whose
    allocations grew most since the first report (tracemalloc: slows the operator a lot)."""
    import os  # noqa: PLC0415
    import threading  # noqa: PLC0415
    import tracemalloc  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from mitigator.observability import memory_snapshots  # noqa: PLC0415

    memory_snapshots.install()  # MITIGATOR_DEBUG_SNAPSHOTS: heap snapshots on SIGUSR1
    path = os.environ.get("MITIGATOR_DEBUG_MEMORY")
    if not path:
        return
    path, _, trace = path.partition(":")
    if trace:
        tracemalloc.start(1)

    def dump() -> None:
        first = None
        while True:
            threading.Event().wait(20)
            memory_snapshots.write_allocator_statistics(Path(path), mode="a")
            if not trace:
                continue
            snapshot = tracemalloc.take_snapshot()
            first = first or snapshot
            current, peak = tracemalloc.get_traced_memory()
            lines = [f"traced now {current >> 20} MiB, peak {peak >> 20} MiB"]
            lines += [str(stat) for stat in snapshot.compare_to(first, "lineno")[:40]]
            with open(path, "a") as out:
                out.write("\n".join(lines) + "\n\n")

    threading.Thread(target=dump, name="memory-debugging", daemon=True).start()


def _bridge(args: argparse.Namespace) -> int:
    import asyncio  # noqa: PLC0415 - only `bridge` needs these; --help stays fast
    import logging  # noqa: PLC0415

    from mitigator.bridge.config import DEFAULT_PORT, ConfigError, load_bridge_settings  # noqa: PLC0415
    from mitigator.bridge.server import Bridge, serve_until_signalled, tls_context  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        settings = load_bridge_settings(
            host=args.host,
            port=args.port,
            token_file=args.token_file,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            target_labels=args.target_label,
            namespaces=args.namespace,
            max_body_bytes=args.max_body_bytes,
            concurrency=args.concurrency,
        )
        ssl_context = tls_context(settings)
        bridge = Bridge.from_settings(settings, args.kubeconfig)
    except (ConfigError, OSError) as exc:
        print(f"mitigator bridge: {exc}", file=sys.stderr)
        return 2
    port = DEFAULT_PORT if settings.port is None else settings.port
    asyncio.run(serve_until_signalled(bridge, settings.host, port, ssl_context))
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
        help="accepted for compatibility: kopf's peering is never used (see --leader-elect)",
    )
    run.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="act only while holding the leader Lease (env MITIGATOR_LEADER_ELECTION; default on)",
    )
    run.add_argument(
        "--lease-namespace",
        default=None,
        help="namespace of the leader Lease (env MITIGATOR_LEASE_NAMESPACE; default: the pod's)",
    )
    run.add_argument("--liveness", default=None, help="e.g. http://0.0.0.0:8080/healthz")
    run.add_argument(
        "--prometheus-url",
        default=None,
        help="default Prometheus for policies that name none (env MITIGATOR_PROMETHEUS_URL)",
    )
    run.add_argument(
        "--log-format",
        choices=["json", "console"],
        default=None,
        help="json (one object per line) or console; default: console on a terminal, else "
        "json (env MITIGATOR_LOG_FORMAT)",
    )
    run.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=None,
        help="default info (env MITIGATOR_LOG_LEVEL)",
    )
    run.set_defaults(handler=_run)

    bridge = commands.add_parser(
        "bridge",
        help="receive Alertmanager webhooks and turn alert groups into Incidents",
        description=(
            "Alertmanager webhook receiver (POST /api/v1/alerts, /healthz, /metrics). Settings "
            "come from the MITIGATOR_BRIDGE_* environment variables; an option given here wins. "
            "The bearer token comes from MITIGATOR_BRIDGE_TOKEN or --token-file (a mounted "
            "Secret)."
        ),
    )
    bridge.add_argument(
        "--host", help="address to listen on (env MITIGATOR_BRIDGE_HOST; default 127.0.0.1)"
    )
    bridge.add_argument(
        "--port", type=int, help="port to listen on (env MITIGATOR_BRIDGE_PORT; default 8080)"
    )
    bridge.add_argument(
        "--token-file",
        help="file holding the bearer token (else env MITIGATOR_BRIDGE_TOKEN_FILE or "
        "MITIGATOR_BRIDGE_TOKEN)",
    )
    bridge.add_argument(
        "--tls-cert",
        help="serve HTTPS with this certificate (PEM; with --tls-key; env "
        "MITIGATOR_BRIDGE_TLS_CERT)",
    )
    bridge.add_argument(
        "--tls-key", help="the certificate's private key (PEM; env MITIGATOR_BRIDGE_TLS_KEY)"
    )
    bridge.add_argument(
        "--target-label",
        action="append",
        help="alert label naming the Deployment, first present wins (repeatable; default "
        "deployment, app, app_kubernetes_io_name; env MITIGATOR_BRIDGE_TARGET_LABELS)",
    )
    bridge.add_argument(
        "--namespace",
        action="append",
        help="namespace pattern Incidents may be created in (repeatable, fnmatch; default any; "
        "env MITIGATOR_BRIDGE_NAMESPACES)",
    )
    bridge.add_argument(
        "--max-body-bytes",
        type=int,
        help="request size limit (env MITIGATOR_BRIDGE_MAX_BODY_BYTES; default 1 MiB)",
    )
    bridge.add_argument(
        "--concurrency",
        type=int,
        help="Kubernetes API calls in flight (env MITIGATOR_BRIDGE_CONCURRENCY; default 16)",
    )
    bridge.add_argument("--kubeconfig", default=None, help="default: in-cluster, else KUBECONFIG")
    bridge.set_defaults(handler=_bridge)
    add_incident_commands(commands)  # incidents, describe, approve, resolve, postmortem, drill
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
