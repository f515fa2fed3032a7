"""Hypothesis-generated Incidents and MitigationPolicies sent to the real API server (issue 13,
point 8): each is refused by the CRD schema with a message naming the field, or accepted and
handled by the operator (a status written: a phase, a condition), and the operator's log holds
no traceback afterwards. The documents are near-valid on purpose: known fields with valid
values or junk, so that both the schema and the operator's own validation are exercised."""

from __future__ import annotations

import copy
import itertools
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from localkube.processes import wait_until
from tests.support.faults import OperatorProcess
from tests.support.kube import deployment_manifest, wait_rollout
from tests.support.objects import GROUP, VERSION

pytestmark = pytest.mark.cluster

EXAMPLES = 150  # per kind; about 30 s of generation and submission on this machine
# How long the operator may take to record every accepted document, once all are submitted.
HANDLED_WITHIN = 90.0

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.sampled_from(["-1s", "5x", "P1D", "", "p1", "SEV1", "drop", "0"]),
)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's valid values (the mistakes are put in by `with_a_mistake`)."""
    return valid


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def with_a_mistake(draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A valid document; two times in three, one field of it (at any depth) replaced by junk.
    The mistake goes into a copy: `st.just` hands out the same object every time, and junk
    put into it would show up in later examples (hypothesis then finds the generation
    inconsistent between runs, FlakyStrategyDefinition)."""
    doc = copy.deepcopy(draw(valid))
    paths = _paths(doc)
    if paths and draw(st.integers(0, 2)):
        *parents, last = draw(st.sampled_from(paths))
        holder = doc
        for key in parents:
            holder = holder[key]
        holder[last] = draw(junk)
    return doc


names = st.one_of(st.just("web"), st.from_regex(r"[a-z]([a-z0-9-]{0,18}[a-z0-9])?", fullmatch=True))
durations = st.sampled_from(["0s", "1s", "2s", "30s", "5m", "1h30m"])
severities = st.sampled_from(["P0", "P1", "P2", "P3", "Unknown"])
action_types = st.sampled_from(["rollback", "scale", "restart", "setEnv", "maintenance"])
env = st.dictionaries(
    st.from_regex(r"[A-Z_]{1,10}", fullmatch=True), st.text(max_size=10), min_size=1, max_size=3
)
labels = st.dictionaries(
    st.from_regex(r"[a-z]{1,8}", fullmatch=True),
    st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True),
    min_size=1,
    max_size=2,
)
actions = st.one_of(
    st.fixed_dictionaries(
        {
            "rollback": maybe(
                st.fixed_dictionaries({}, optional={"toRevision": maybe(st.integers(-3, 9))})
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "scale": maybe(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "replicas": maybe(st.integers(-5, 50)),
                        "increment": maybe(st.integers(-5, 50)),
                    },
                )
            )
        }
    ),
    st.fixed_dictionaries({"restart": maybe(st.just({}))}),
    st.fixed_dictionaries(
        {
            "setEnv": maybe(
                st.fixed_dictionaries(
                    {"env": maybe(env)}, optional={"container": maybe(st.sampled_from(["app", ""]))}
                )
            )
        }
    ),
    st.fixed_dictionaries(
        {"maintenance": maybe(st.fixed_dictionaries({}, optional={"backendSelector": maybe(env)}))}
    ),
    junk,
)
incident_specs = st.fixed_dictionaries(
    {
        "target": maybe(
            st.fixed_dictionaries({"kind": maybe(st.just("Deployment")), "name": maybe(names)})
        )
    },
    optional={
        "severity": maybe(severities),
        "title": maybe(st.text(max_size=100)),
        "dryRun": maybe(st.booleans()),
        "approved": maybe(st.booleans()),
        "resolve": maybe(st.booleans()),
        "policyRef": maybe(st.fixed_dictionaries({"name": maybe(names)})),
        "actions": st.lists(actions, min_size=1, max_size=4),
        "source": maybe(
            st.fixed_dictionaries(
                {"type": maybe(st.sampled_from(["manual", "alertmanager", "drill", "pager"]))},
                optional={
                    "alertname": maybe(st.text(max_size=20)),
                    "labels": maybe(st.dictionaries(st.text(max_size=8), st.text(max_size=8))),
                },
            )
        ),
    },
)
rules = st.fixed_dictionaries(
    {"name": maybe(names), "actions": st.lists(actions, min_size=1, max_size=4)},
    optional={
        "when": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "severities": maybe(st.lists(severities, max_size=3)),
                    "alertnames": maybe(st.lists(st.text(max_size=10), max_size=2)),
                    "recentRolloutWithin": maybe(durations),
                },
            )
        )
    },
)
policy_specs = st.fixed_dictionaries(
    {
        "selector": st.fixed_dictionaries(
            {"matchLabels": st.one_of(st.just({"app": "web"}), labels)}
        ),
        "rules": st.lists(rules, min_size=1, max_size=3),
    },
    optional={
        "metrics": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "errorRate": maybe(st.text(max_size=30)),
                    "p95Latency": maybe(st.text(max_size=30)),
                    "prometheusURL": maybe(st.sampled_from(["http://127.0.0.1:9", "ftp://x", ""])),
                },
            )
        ),
        "verification": maybe(
            st.fixed_dictionaries(
                {}, optional={"window": maybe(durations), "timeout": maybe(durations)}
            )
        ),
        "guardrails": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "cooldown": maybe(durations),
                    "maxReplicas": maybe(st.integers(-2, 100)),
                    "maxConcurrentMitigations": maybe(st.integers(-2, 10)),
                    "maxActionsPerHour": maybe(st.integers(-2, 10)),
                    "requireApprovalFor": maybe(st.lists(action_types, max_size=3)),
                    "protectedNamespaces": maybe(st.lists(names, max_size=2)),
                    "targetWait": maybe(durations),
                },
            )
        ),
        "revertOnResolve": maybe(st.lists(action_types, max_size=3)),
        "escalation": maybe(
            st.lists(
                st.fixed_dictionaries(
                    {"after": maybe(durations), "level": maybe(st.integers(-1, 6))},
                    optional={
                        "name": maybe(st.text(max_size=10)),
                        "webhook": maybe(st.sampled_from(["http://127.0.0.1:9/h", "not a url"])),
                    },
                ),
                max_size=3,
            )
        ),
    },
)


def _status_written(
    custom: client.CustomObjectsApi, namespace: str, plural: str, name: str
) -> bool:
    obj: dict[str, Any] = custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, plural, name
    )
    status = obj.get("status") or {}
    return bool(status.get("phase") or status.get("conditions"))


def test_generated_documents_are_refused_naming_the_field_or_handled_without_a_traceback(
    *,
    fault_api: client.ApiClient,
    fault_apps: client.AppsV1Api,
    fault_namespace: str,
    fault_operator: OperatorProcess,
) -> None:
    namespace = fault_namespace
    custom = client.CustomObjectsApi(fault_api)
    # A real target for the documents that name "web".
    fault_apps.create_namespaced_deployment(namespace, deployment_manifest("web"))
    wait_rollout(fault_apps, namespace, "web")
    fault_operator.start()
    counter = itertools.count()
    accepted: list[tuple[str, str]] = []
    refusals: list[str] = []

    def submit(kind: str, plural: str, spec: Any) -> None:
        name = f"{plural[:3]}-{next(counter)}"
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}}
        body["spec"] = spec
        try:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
        except ApiException as exc:
            assert exc.status == 422, (exc.status, exc.body, spec)
            assert "spec" in (exc.body or ""), ("the refusal names no field", exc.body, spec)
            refusals.append(exc.body)
        else:
            accepted.append((plural, name))

    quick = settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )

    @quick
    @given(with_a_mistake(incident_specs))
    def incidents(spec: Any) -> None:
        submit("Incident", "incidents", spec)

    @quick
    @given(with_a_mistake(policy_specs))
    def policies(spec: Any) -> None:
        submit("MitigationPolicy", "mitigationpolicies", spec)

    started = time.monotonic()
    policies()
    incidents()
    submitted = time.monotonic() - started
    # From the last submission: how long generating and submitting took (a matter of the
    # machine's load, not of the operator) leaves the operator's time alone.
    handled_by = time.monotonic() + HANDLED_WITHIN
    for plural, name in accepted:
        wait_until(
            lambda p=plural, n=name: _status_written(custom, namespace, p, n),
            timeout=max(5.0, handled_by - time.monotonic()),
            what=f"the operator to record {plural}/{name}",
        )
    counts = {p: sum(1 for q, _ in accepted if q == p) for p in ("incidents", "mitigationpolicies")}
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "mitigationpolicies")
    invalid = [
        item["metadata"]["name"]
        for item in listed["items"]
        if any(c.get("reason") == "InvalidSpec" for c in item["status"].get("conditions") or [])
    ]
    failed = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "incidents")
    phases = sorted((item.get("status") or {}).get("phase", "?") for item in failed["items"])
    print(
        f"{next(counter)} documents in {submitted:.0f}s: {len(refusals)} refused by the schema, "
        f"accepted and handled {counts}; policies recorded Invalid: {len(invalid)}; "
        f"incident phases: { {ph: phases.count(ph) for ph in set(phases)} }"
    )
    assert fault_operator.process is not None and fault_operator.process.poll() is None
    assert fault_operator.tracebacks() == [], fault_operator.tail()
