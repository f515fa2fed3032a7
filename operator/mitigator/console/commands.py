"""The incident subcommands and their options, added to the `mitigator` parser."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

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
