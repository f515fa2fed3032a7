"""The CRDs in crds/ and the pydantic models describe the same resources.

Walked side by side, recursively: the same field names (camelCase aliases), the same required
fields, enums, constraints and formats; the same defaults (checked by applying the CRD's
defaults the way the API server does and comparing with what the models fill in); the status
fully declared so structural pruning keeps what the operator writes.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from mitigator import API_GROUP, API_VERSION, INCIDENT_PLURAL, POLICY_PLURAL
from mitigator.models import IncidentSpec, IncidentStatus, PolicySpec, PolicyStatus

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
EXAMPLES = ROOT / "examples"

# Keywords whose values must be equal on both sides when either side has them.
CONSTRAINTS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "pattern",
)
# Free-form objects: the only places the status may keep fields it does not declare.
FREE_FORM = {
    ("status", "classification", "observed"),
    ("status", "actions", "[]", "params"),
    ("status", "actions", "[]", "before"),
    ("status", "actions", "[]", "after"),
    ("status", "gitops", "before"),
    ("status", "gitops", "after"),
}


def load_crd(name: str) -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load((CRDS / name).read_text())
    return crd


def version_of(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    return dict(version)


def root_schema(crd: dict[str, Any]) -> dict[str, Any]:
    return dict(version_of(crd)["schema"]["openAPIV3Schema"])


CASES = [
    ("incidents.yaml", "spec", IncidentSpec),
    ("incidents.yaml", "status", IncidentStatus),
    ("mitigationpolicies.yaml", "spec", PolicySpec),
    ("mitigationpolicies.yaml", "status", PolicyStatus),
]


class ModelSchema:
    """A pydantic model's JSON schema (validation mode, aliases), with $refs resolved and
    Optional[...] unwrapped."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.schema = model.model_json_schema(by_alias=True, mode="validation")
        self.defs: dict[str, Any] = self.schema.get("$defs", {})

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while True:
            if "$ref" in node:
                node = {**self.defs[node["$ref"].split("/")[-1]], **_without(node, "$ref")}
            elif "anyOf" in node:
                branches = [branch for branch in node["anyOf"] if branch.get("type") != "null"]
                assert len(branches) == 1, f"unexpected union {node}"
                node = {**branches[0], **_without(node, "anyOf")}
            elif "allOf" in node and len(node["allOf"]) == 1:
                node = {**node["allOf"][0], **_without(node, "allOf")}
            else:
                return node


def _without(node: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k != key}


def _is_empty(value: Any) -> bool:
    return value is None or value in ([], {}, "")


def compare(
    crd: dict[str, Any], model_node: dict[str, Any], schema: ModelSchema, path: tuple[str, ...]
) -> list[str]:
    """Every disagreement between a CRD schema node and a model schema node, recursively."""
    where = ".".join(path)
    model = schema.resolve(model_node)
    problems: list[str] = []
    if crd.get("x-kubernetes-preserve-unknown-fields"):
        if path not in FREE_FORM:
            problems.append(f"{where}: preserve-unknown-fields outside the free-form objects")
        if model.get("type") != "object":
            problems.append(f"{where}: free-form in the CRD but {model.get('type')} in the model")
        return problems
    if crd.get("type") != model.get("type"):
        return [f"{where}: type {crd.get('type')} in the CRD, {model.get('type')} in the model"]
    if set(crd.get("enum", [])) != set(model.get("enum", [])):
        problems.append(f"{where}: enum {crd.get('enum')} != {model.get('enum')}")
    for keyword in CONSTRAINTS:
        if crd.get(keyword) != model.get(keyword):
            problems.append(f"{where}: {keyword} {crd.get(keyword)!r} != {model.get(keyword)!r}")
    if crd.get("type") == "string" and crd.get("format") != model.get("format"):
        problems.append(f"{where}: format {crd.get('format')} != {model.get('format')}")
    if crd.get("type") == "array":
        problems += compare(crd["items"], model["items"], schema, (*path, "[]"))
    if crd.get("type") == "object":
        problems += _compare_object(crd, model, schema, path)
    return problems


def _compare_object(
    crd: dict[str, Any], model: dict[str, Any], schema: ModelSchema, path: tuple[str, ...]
) -> list[str]:
    where = ".".join(path)
    problems: list[str] = []
    if "additionalProperties" in crd:
        extra = model.get("additionalProperties")
        if not isinstance(extra, dict):
            return [f"{where}: a map in the CRD, not in the model"]
        return compare(crd["additionalProperties"], extra, schema, (*path, "{}"))
    crd_properties: dict[str, Any] = crd.get("properties", {})
    model_properties: dict[str, Any] = model.get("properties", {})
    if set(crd_properties) != set(model_properties):
        problems.append(
            f"{where}: only in the CRD {sorted(set(crd_properties) - set(model_properties))}, "
            f"only in the model {sorted(set(model_properties) - set(crd_properties))}"
        )
    if set(crd.get("required", [])) != set(model.get("required", [])):
        problems.append(f"{where}: required {crd.get('required')} != {model.get('required')}")
    for name in sorted(set(crd_properties) & set(model_properties)):
        crd_property, model_property = crd_properties[name], model_properties[name]
        # A default on one side needs one on the other (their values: test_defaults_agree).
        required_in_model = name in model.get("required", [])
        model_default = model_property.get("default")
        if "default" in crd_property and required_in_model:
            problems.append(f"{where}.{name}: defaulted in the CRD, required in the model")
        if not _is_empty(model_default) and "default" not in crd_property:
            problems.append(f"{where}.{name}: default {model_default!r} only in the model")
        problems += compare(crd_property, model_property, schema, (*path, name))
    return problems


@pytest.mark.parametrize(
    ("crd_file", "part", "model"), CASES, ids=lambda x: getattr(x, "__name__", x)
)
def test_schema_and_model_agree(crd_file: str, part: str, model: type[BaseModel]) -> None:
    crd_schema = root_schema(load_crd(crd_file))["properties"][part]
    schema = ModelSchema(model)
    assert compare(crd_schema, schema.schema, schema, (part,)) == []


def test_the_walk_notices_a_disagreement() -> None:
    """The comparison is not vacuous: a renamed field, a changed enum or a changed bound in
    the CRD is reported."""
    crd_schema = root_schema(load_crd("incidents.yaml"))["properties"]["spec"]
    schema = ModelSchema(IncidentSpec)
    renamed = copy.deepcopy(crd_schema)
    renamed["properties"]["dry_run"] = renamed["properties"].pop("dryRun")
    enum_changed = copy.deepcopy(crd_schema)
    enum_changed["properties"]["severity"]["enum"].append("P4")
    bound_changed = copy.deepcopy(crd_schema)
    bound_changed["properties"]["title"]["maxLength"] = 100
    for broken in (renamed, enum_changed, bound_changed):
        assert compare(broken, schema.schema, schema, ("spec",)) != []


# ---------------------------------------------------------------- defaults


def apply_crd_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """Structural defaulting as the API server does it: absent properties get their default,
    then defaulting recurses into every value, defaulted ones included."""
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name, prop in properties.items():
            if name not in value and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
        for name, item in value.items():
            if name in properties:
                apply_crd_defaults(item, properties[name])
            elif isinstance(schema.get("additionalProperties"), dict):
                apply_crd_defaults(item, schema["additionalProperties"])
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            apply_crd_defaults(item, schema["items"])
    return value


ACTION_KEYS = {"rollback", "scale", "restart", "setEnv", "maintenance"}


def without_empty(value: Any) -> Any:
    """Drops the empty lists and maps the models fill in where the CRD leaves a field absent
    (both mean "none"); `restart: {}` is an action, not an empty value, and stays."""
    if isinstance(value, dict):
        cleaned = {key: without_empty(item) for key, item in value.items()}
        return {
            key: item for key, item in cleaned.items() if key in ACTION_KEYS or not _is_empty(item)
        }
    if isinstance(value, list):
        return [without_empty(item) for item in value]
    return value


ALL_ACTIONS = [
    {"rollback": {}},
    {"rollback": {"toRevision": 3}},
    {"scale": {"replicas": 2}},
    {"scale": {"increment": 1, "max": 4}},
    {"restart": {}},
    {"setEnv": {"env": {"DISABLE_WEB_SEARCH": "true"}}},
    {"maintenance": {"service": "luminamind", "backendSelector": {"app": "maintenance"}}},
]
MINIMAL_INCIDENTS = [
    {"target": {"name": "luminamind"}},
    {
        "target": {"name": "luminamind"},
        "source": {"type": "alertmanager"},
        "actions": ALL_ACTIONS[:6],
    },
    {"target": {"name": "luminamind"}, "actions": ALL_ACTIONS[6:]},
]
MINIMAL_POLICIES = [
    {
        "selector": {"matchLabels": {"app": "x"}},
        "rules": [{"name": "r", "actions": ALL_ACTIONS[:6]}],
    },
    {
        "selector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
        "rules": [{"name": "m", "actions": ALL_ACTIONS[6:]}],
        "metrics": {},
        "severity": {"p1ErrorRate": 0.1},
        "verification": {"window": "1m"},
        "guardrails": {"dryRun": True},
        "escalation": [{"level": 1, "after": "15m"}],
    },
]


def _example_specs(kind: str) -> list[dict[str, Any]]:
    specs = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == kind:
                specs.append(document["spec"])
    return specs


@pytest.mark.parametrize(
    ("crd_file", "model", "spec"),
    [
        ("incidents.yaml", IncidentSpec, spec)
        for spec in MINIMAL_INCIDENTS + _example_specs("Incident")
    ]
    + [
        ("mitigationpolicies.yaml", PolicySpec, spec)
        for spec in MINIMAL_POLICIES + _example_specs("MitigationPolicy")
    ],
)
def test_defaults_agree(
    crd_file: str, model: type[IncidentSpec | PolicySpec], spec: dict[str, Any]
) -> None:
    """What the API server stores for a spec is what the model reads from it."""
    schema = root_schema(load_crd(crd_file))["properties"]["spec"]
    defaulted_by_server = apply_crd_defaults(copy.deepcopy(spec), schema)
    read_by_model = model.model_validate(spec).to_api_dict()
    assert without_empty(defaulted_by_server) == without_empty(read_by_model)
    # Reading back what the server stored changes nothing.
    assert model.model_validate(defaulted_by_server).to_api_dict() == read_by_model


# ---------------------------------------------------------------- the CRD itself


@pytest.mark.parametrize(
    ("crd_file", "kind", "plural", "short_name"),
    [
        ("incidents.yaml", "Incident", INCIDENT_PLURAL, "inc"),
        ("mitigationpolicies.yaml", "MitigationPolicy", POLICY_PLURAL, "mpol"),
    ],
)
def test_names_scope_and_version(crd_file: str, kind: str, plural: str, short_name: str) -> None:
    crd = load_crd(crd_file)
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.{API_GROUP}"
    assert crd["spec"]["group"] == API_GROUP
    assert crd["spec"]["scope"] == "Namespaced"
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == (kind, plural, [short_name])
    assert names["categories"] == ["mitigator"]
    version = version_of(crd)
    assert (version["name"], version["served"], version["storage"]) == (API_VERSION, True, True)
    assert version["subresources"] == {"status": {}}
    assert root_schema(crd)["required"] == ["spec"]


def test_printer_columns() -> None:
    def columns(crd_file: str) -> dict[str, str]:
        return {
            column["name"]: column["jsonPath"]
            for column in version_of(load_crd(crd_file))["additionalPrinterColumns"]
            if column.get("priority", 0) == 0
        }

    assert columns("incidents.yaml") == {
        "Severity": ".status.severity",
        "Phase": ".status.phase",
        "Target": ".spec.target.name",
        "Age": ".metadata.creationTimestamp",
    }
    assert columns("mitigationpolicies.yaml") == {
        "Valid": '.status.conditions[?(@.type=="Valid")].status',
        "Covers": ".status.coveredCount",
        "Age": ".metadata.creationTimestamp",
    }


def _properties(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, prop in node.get("properties", {}).items():
        found.append((f"{path}.{name}", prop))
        found += _properties(prop, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            found += _properties(node[key], f"{path}[]")
    return found


@pytest.mark.parametrize("crd_file", ["incidents.yaml", "mitigationpolicies.yaml"])
def test_every_field_is_described(crd_file: str) -> None:
    schema = root_schema(load_crd(crd_file))
    undocumented = [
        path
        for path, prop in _properties(schema, "")
        if path not in (".apiVersion", ".kind", ".metadata") and not prop.get("description")
    ]
    assert undocumented == []


@pytest.mark.parametrize("crd_file", ["incidents.yaml", "mitigationpolicies.yaml"])
def test_every_cel_rule_explains_itself(crd_file: str) -> None:
    def rules(node: Any) -> list[dict[str, Any]]:
        if isinstance(node, dict):
            own = list(node.get("x-kubernetes-validations", []))
            return own + [rule for value in node.values() for rule in rules(value)]
        if isinstance(node, list):
            return [rule for value in node for rule in rules(value)]
        return []

    found = rules(root_schema(load_crd(crd_file)))
    assert found
    assert all(rule.get("message") for rule in found)
