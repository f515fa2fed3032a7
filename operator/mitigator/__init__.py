"""mitigator: a Kubernetes operator that classifies, mitigates and verifies incidents.

The API group and version live here because the CRDs, the models and the handlers must all
agree on them, and a single constant is the cheapest way to keep them agreeing.
"""

API_GROUP = "mitigator.luminamind.io"
API_VERSION = "v1alpha1"
INCIDENT_PLURAL = "incidents"
POLICY_PLURAL = "mitigationpolicies"

__all__ = ["API_GROUP", "API_VERSION", "INCIDENT_PLURAL", "POLICY_PLURAL"]
