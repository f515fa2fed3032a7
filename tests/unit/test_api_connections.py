"""How many connections the operator lets kopf open to the API server."""

from __future__ import annotations

from mitigator.handlers.startup import api_connections
from mitigator.settings import OperatorSettings


def test_room_for_every_watch_and_every_handler_thread() -> None:
    settings = OperatorSettings(max_workers=32)
    assert api_connections(settings, []) == 32 + 16 + 3
    assert api_connections(settings, ["a", "b"]) == 32 + 16 + 6


def test_a_glob_matches_namespaces_not_known_yet_so_no_limit() -> None:
    assert api_connections(OperatorSettings(), ["team-*"]) is None


def test_a_limit_set_wins() -> None:
    assert api_connections(OperatorSettings(api_connections=200), ["team-*"]) == 200
