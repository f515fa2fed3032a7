"""A replica shutting down gives its Lease up whenever the API server still names it, even
when its own last renewal is older than the renew deadline (a loaded machine, a long pause):
otherwise the standby waits for the Lease to expire. The Lease store here is a stand-in for
the API server's optimistic writes (resourceVersion tested on replace)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from mitigator.handlers.leadership import LeaderElector
from mitigator.k8s import AlreadyExists, Conflict, NotFound


@dataclass
class LeaseStore:
    lease: dict[str, Any] | None = None
    requests: list[str] = field(default_factory=list)

    def read_lease(self, namespace: str, name: str, *, timeout: float) -> dict[str, Any]:
        self.requests.append("read")
        if self.lease is None:
            raise NotFound(404, "not found")
        return copy.deepcopy(self.lease)

    def create_lease(self, namespace: str, body: dict[str, Any], *, timeout: float) -> None:
        self.requests.append("create")
        if self.lease is not None:
            raise AlreadyExists(409, "exists")
        self.lease = {
            **copy.deepcopy(body),
            "metadata": {**body["metadata"], "resourceVersion": "1"},
        }

    def replace_lease(
        self, namespace: str, name: str, body: dict[str, Any], *, timeout: float
    ) -> None:
        self.requests.append("replace")
        assert self.lease is not None
        if body["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            raise Conflict(409, "conflict")
        version = str(int(self.lease["metadata"]["resourceVersion"]) + 1)
        self.lease = {
            **copy.deepcopy(body),
            "metadata": {**body["metadata"], "resourceVersion": version},
        }

    def holder(self) -> str | None:
        assert self.lease is not None
        return self.lease["spec"].get("holderIdentity")


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


def _elector(store: LeaseStore, clock: Clock, identity: str) -> LeaderElector:
    return LeaderElector(
        store,  # type: ignore[arg-type]
        namespace="mitigator-system",
        name="mitigator",
        identity=identity,
        lease_duration=15,
        renew_deadline=10,
        retry_period=2,
        clock=clock,
    )


def test_a_leader_whose_last_renewal_is_stale_still_releases_a_lease_that_names_it() -> None:
    store, clock = LeaseStore(), Clock()
    leader = _elector(store, clock, "op-a")
    assert leader.try_once() and leader.acting()
    clock.now += 11  # past the renew deadline: no longer acting, the Lease still names op-a
    assert not leader.acting()
    assert store.holder() == "op-a"
    leader.stop()
    assert store.holder() is None
    assert store.lease is not None and store.lease["spec"]["leaseDurationSeconds"] == 1


def test_a_lease_another_replica_took_meanwhile_is_left_to_it() -> None:
    store, clock = LeaseStore(), Clock()
    leader, standby = _elector(store, clock, "op-a"), _elector(store, clock, "op-b")
    assert leader.try_once()
    clock.now += 11
    assert not standby.try_once()  # it has only now seen this version of the Lease
    clock.now += 16  # the Lease expired for op-b too
    assert standby.try_once()
    leader.stop()
    assert store.holder() == "op-b"


def test_a_standby_that_never_held_the_lease_makes_no_request_when_it_stops() -> None:
    store, clock = LeaseStore(), Clock()
    _elector(store, clock, "op-a").try_once()
    standby = _elector(store, clock, "op-b")
    assert not standby.try_once()
    before = list(store.requests)
    standby.stop()
    assert store.requests == before
    assert store.holder() == "op-a"
