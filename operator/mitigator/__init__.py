"""mitigator: a Kubernetes operator that classifies, mitigates and verifies incidents.

The API group and version live here because the CRDs, the models and the handlers must all
agree on them, and a single constant is the cheapest way to keep them agreeing.
"""

API_GROUP = "mitigator.luminamind.io"
API_VERSION = "v1alpha1"
INCIDENT_PLURAL = "incidents"
POLICY_PLURAL = "mitigationpolicies"
# The exactly-once record of the actions applied to an object, kept on the object itself.
ACTIONS_ANNOTATION = f"{API_GROUP}/actions"
# Which Incident is mitigating an object right now: one at a time, decided on the API server.
CLAIM_ANNOTATION = f"{API_GROUP}/claim"

__all__ = [
    "ACTIONS_ANNOTATION",
    "API_GROUP",
    "API_VERSION",
    "CLAIM_ANNOTATION",
    "INCIDENT_PLURAL",
    "POLICY_PLURAL",
]
