"""One tick of an incident: what it reads once (target, policy, evidence) and what it
writes (the status draft), shared by the phase modules."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from string import Template

from mitigator.domain.conditions import incident_conditions
from mitigator.domain.evidence import Evidence, sample_golden_signals
from mitigator.domain.guardrails import check_protected_namespace
from mitigator.domain.lifecycle.draft import Event, StatusDraft
from mitigator.domain.ports import MetricsProvider, World, usable_value
from mitigator.domain.selection import choose_policy
from mitigator.models import (
    IncidentSpec,
    IncidentStatus,
    MetricQueries,
    Phase,
    PolicySpec,
    TimelineEvent,
)
from mitigator.models.evidence import PodHealth, TargetRead, TargetSnapshot

FIRING_ALERTS_QUERY = Template(
    'count(ALERTS{alertstate="firing",namespace="$namespace",deployment="$name"}) or vector(0)'
)


@dataclass(frozen=True)
class IncidentView:
    """The Incident as the handler read it, its spec validated."""

    namespace: str
    name: str
    uid: str
    generation: int
    spec: IncidentSpec
    status: IncidentStatus


@dataclass(frozen=True)
class ChosenPolicy:
    """The policy covering the target (None: none does, `reason` says why)."""

    name: str | None
    spec: PolicySpec | None
    reason: str


@dataclass
class Advance:
    """What a tick decided: the next status and the events to post."""

    status: IncidentStatus
    events: list[Event] = field(default_factory=list)
    target_uid: str | None = None


class Tick:
    def __init__(
        self,
        view: IncidentView,
        *,
        world: World,
        now: datetime,
        protected_namespaces: Iterable[str],
        verification_refresh: timedelta,
    ) -> None:
        self.view = view
        self.spec = view.spec
        self.world = world
        self.now = now
        self.protected = tuple(protected_namespaces)
        # How old the recorded values of an unchanged verification window may get.
        self.verification_refresh = verification_refresh
        self.draft = StatusDraft.of(view.status)
        self._target: TargetSnapshot | None = None
        self._policy: ChosenPolicy | None = None
        # The claim on the target was given up this tick already (with a revert's patch).
        self.claim_released = False

    def target(self) -> TargetSnapshot:
        if self._target is None:
            self._target = self.world.snapshot(self.view.namespace, self.spec.target.name)
        return self._target

    def policy(self) -> ChosenPolicy:
        """The policy covering the target, read fresh each tick: a re-applied policy takes
        effect for the next decision."""
        if self._policy is None:
            # Labels as the watch saw them when the target was not read this tick: choosing
            # the policy (e.g. to wait for a slot) then costs no request.
            labels = (
                self.world.target_labels(self.view.namespace, self.spec.target.name)
                if self._target is None
                else None
            )
            choice = choose_policy(
                self.world.policies(self.view.namespace),
                target_labels=self.target().labels if labels is None else labels,
                policy_ref=self.spec.policy_ref.name if self.spec.policy_ref else None,
                followed=self.view.status.policy,
            )
            chosen = choice.policy
            self._policy = ChosenPolicy(
                chosen.name if chosen else None, chosen.spec if chosen else None, choice.reason
            )
        return self._policy

    def provider(self, queries: MetricQueries) -> MetricsProvider:
        # Credentials are passed only when the policy names them: a World without them keeps
        # its one-argument form.
        if queries.auth is None:
            return self.world.metrics(queries.prometheus_url)
        return self.world.metrics(queries.prometheus_url, auth=queries.auth)

    def read(self) -> TargetRead | None:
        """The target's objects as this tick read them, for the executor to act on; None when
        this tick has not read the target (the executor reads it then)."""
        return self._target.read if self._target is not None else None

    def evidence(self, policy: PolicySpec | None, *, pod_level: bool = False) -> Evidence:
        """The golden signals and the pods' health; `pod_level` reads the pods themselves
        (crash loops, OOM kills: classification), else the Deployment's counts suffice."""
        queries = policy.metrics if policy else MetricQueries()
        provider = self.provider(queries)
        target = self.target()
        if pod_level:
            # The pods' LIST and the two queries depend on nothing of each other: side by
            # side, a first tick waits for the longer of them, not for their sum.
            target.prefetch_pod_health()
        error_rate, p95 = sample_golden_signals(
            provider, queries=queries, namespace=self.view.namespace, name=self.spec.target.name
        )
        pods = (target.pod_health() if pod_level else target.pods) or PodHealth(desired=0, ready=0)
        return Evidence(
            error_rate=error_rate, p95_seconds=p95, pods=pods, labels=self.spec.source.labels
        )

    def firing_alerts(self, policy: PolicySpec | None) -> int | None:
        """Alerts still firing for the target; None when Prometheus cannot say."""
        provider = self.provider(policy.metrics if policy else MetricQueries())
        query = FIRING_ALERTS_QUERY.substitute(
            namespace=self.view.namespace, name=self.spec.target.name
        )
        value = usable_value(provider.query(query))
        return int(value) if value is not None else None

    def protected_refusal(self, policy: PolicySpec) -> str | None:
        return check_protected_namespace(
            self.view.namespace,
            protected_namespaces=(*self.protected, *policy.guardrails.protected_namespaces),
        )

    def note(
        self,
        event: TimelineEvent,
        message: str,
        *,
        warning: bool = False,
        on_target: bool = False,
    ) -> None:
        self.draft.note(event, message, now=self.now, warning=warning, on_target=on_target)

    def escalate(self, message: str) -> None:
        self.draft.enter(Phase.ESCALATED, message)
        self.note(TimelineEvent.ESCALATED, message, warning=True)

    def refuse(self, refusal: str, *, before: str | None = None) -> None:
        """A guardrail said no: the refusal in the timeline, then Escalated with it, saying
        whether anything had been changed before."""
        self.note(TimelineEvent.REFUSED, refusal, warning=True)
        where = f" before {before}" if before else ""
        unchanged = "" if self.draft.holds_claim else "; nothing was changed"
        self.escalate(f"refused{where}: {refusal}{unchanged}")

    def fail(self, message: str) -> None:
        self.draft.enter(Phase.FAILED, message)
        self.note(TimelineEvent.FAILED, message, warning=True)

    def finish(self) -> Advance:
        status = self.draft.onto(self.view.status)
        status = status.model_copy(
            update={
                "observed_generation": self.view.generation,
                "conditions": incident_conditions(status, now=self.now),
            }
        )
        target = self._target
        target_uid = target.uid if target and target.exists else None
        return Advance(status=status, events=self.draft.events, target_uid=target_uid)
