"""Pinned versions of everything the local control plane builds. One place to bump."""

KUBERNETES_VERSION = "1.36.3"
ETCD_VERSION = "3.6.16"
KWOK_VERSION = "0.8.0"
