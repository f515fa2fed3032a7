"""The incident subcommands and their options, added to the `mitigator` parser."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

# The guide's service counts its requests in luminamind_requests_total; $range is the length
# of the incident window. Another service gives its own counters.
FAILED_QUERY = (
    'sum(increase(luminamind_requests_total{namespace="$namespace",deployment="$name",'
    'status=~"5.."}[$range]))'
)
TOTAL_QUERY = (
    'sum(increase(luminamind_requests_total{namespace="$namespace",deployment="$name"}[$range]))'
)

Handler = Callable[[argparse.Namespace], int]


def _lazy(module: str, name: str) -> Handler:
    """Import the command's module when it runs: `mitigator --help` stays fast."""

    def run(args: argparse.Namespace) -> int:
        import importlib  # noqa: PLC0415

        from mitigator.console.session import guarded  # noqa: PLC0415

        handler: Handler = getattr(importlib.import_module(f"mitigator.console.{module}"), name)
        return guarded(f"mitigator {args.command}", lambda: handler(args))

    return run


def add_connection_options(parser: argparse.ArgumentParser, *, all_namespaces: bool) -> None:
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: KUBECONFIG)")
    parser.add_argument("--context", default=None, help="kubeconfig context (default: current)")
    parser.add_argument(
        "-n", "--namespace", default=None, help="namespace (default: the context's)"
    )
    if all_namespaces:
        parser.add_argument(
            "-A", "--all-namespaces", action="store_true", help="incidents of every namespace"
        )


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", choices=("json", "yaml"), default=None, help="print JSON or YAML"
    )


def add_commands(commands: Any) -> None:
    """`commands`: the `add_subparsers()` of the top-level parser."""
    listing = commands.add_parser(
        "incidents", help="list incidents: age, severity, phase, target, time to mitigate"
    )
    add_connection_options(listing, all_namespaces=True)
    _output(listing)
    listing.set_defaults(handler=_lazy("reading", "list_incidents"))

    for name, module, function, text in (
        ("describe", "reading", "describe_incident", "show an incident's whole record"),
        ("approve", "approval", "approve", "approve the steps waiting for a person (as you)"),
        ("resolve", "approval", "resolve", "close an incident by hand (as you)"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("incident", metavar="INCIDENT")
        add_connection_options(sub, all_namespaces=False)
        _output(sub)
        sub.set_defaults(handler=_lazy(module, function))

    post = commands.add_parser(
        "postmortem",
        help="draft the post-mortem: timeline, impact from Prometheus, chart",
        description="Markdown after the guide's template, the human parts left as prompts. "
        "With -o FILE, the chart is written beside it as FILE's name with .png and .svg.",
    )
    post.add_argument("incident", metavar="INCIDENT")
    add_connection_options(post, all_namespaces=False)
    post.add_argument("-o", "--output", metavar="FILE", help="write the Markdown (and chart) here")
    post.add_argument(
        "--prometheus-url",
        help="default: the policy's metrics.prometheusURL, else MITIGATOR_PROMETHEUS_URL",
    )
    post.add_argument(
        "--failed-query",
        default=FAILED_QUERY,
        help="PromQL for the requests that failed over $range ($namespace, $name substituted)",
    )
    post.add_argument(
        "--requests-query", default=TOTAL_QUERY, help="PromQL for all requests over $range"
    )
    post.set_defaults(handler=_lazy("postmortem", "postmortem"))

    drill = commands.add_parser(
        "drill",
        help="rehearse a policy on a Deployment: print the plan it would run, change nothing",
    )
    drill.add_argument("policy", metavar="POLICY")
    drill.add_argument("--target", required=True, metavar="DEPLOY", help="the Deployment")
    drill.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the operator's plan"
    )
    add_connection_options(drill, all_namespaces=False)
    _output(drill)
    drill.set_defaults(handler=_lazy("drill", "drill"))
