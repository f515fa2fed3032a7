#!/usr/bin/env bash
# Run the control-plane tests against a cluster the suite did not start, the way a user with
# Docker runs them against kind: MITIGATOR_TEST_KUBECONFIG points at `python -m localkube up`.
set -euo pipefail
export LOCALKUBE_DIR="${MITIGATOR_CACHE:-$HOME/.cache/mitigator}/existing-cluster-check"
trap '"${PYTHON:-python3}" -m localkube down' EXIT
kubeconfig=$("${PYTHON:-python3}" -m localkube up | tail -n 1 | sed 's/^export KUBECONFIG=//')
echo "existing cluster at $kubeconfig"
MITIGATOR_TEST_KUBECONFIG="$kubeconfig" "${PYTHON:-python3}" -m pytest -p no:cacheprovider -q \
  tests/integration/test_control_plane.py
