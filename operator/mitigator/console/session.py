"""What every incident command shares: kubectl's connection options, and turning every
failure a person can cause or meet into one clear line and exit status 1 (no traceback)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime

import urllib3.exceptions

from mitigator.k8s import ApiError, Invalid, NotFound
from mitigator.k8s.connect import Connection, KubeconfigError, connect


class CommandError(RuntimeError):
    """A failure the command explains in its message (printed as is, exit 1)."""


def open_session(args: argparse.Namespace) -> tuple[Connection, str]:
    """The connection and the namespace the command works in."""
    connection = connect(args.kubeconfig, context=args.context)
    return connection, args.namespace or connection.namespace


def now() -> datetime:
    return datetime.now(UTC)


def guarded(prog: str, body: Callable[[], int]) -> int:
    """Run a command; what goes wrong is reported as `prog: why` on stderr, exit status 1."""
    try:
        return body()
    except (CommandError, KubeconfigError, NotFound) as exc:
        return _fail(prog, str(exc))
    except Invalid as exc:
        return _fail(prog, f"refused by the API server: {exc}")
    except ApiError as exc:
        if exc.status in (401, 403):
            return _fail(prog, f"refused by the API server: {exc.server_message or exc}")
        return _fail(prog, f"{exc}{': ' + exc.server_message if exc.server_message else ''}")
    except urllib3.exceptions.HTTPError as exc:
        reason = getattr(exc, "reason", None) or exc
        return _fail(prog, f"cannot reach the Kubernetes API server: {reason}")
    except KeyboardInterrupt:
        return _fail(prog, "interrupted")


def _fail(prog: str, message: str) -> int:
    print(f"{prog}: {message}", file=sys.stderr)
    return 1
