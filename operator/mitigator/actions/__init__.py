"""The five mitigations: pure builders of JSON patches (``builders``), the exactly-once record
kept on the target (``marker``), and the executor that applies them through ``mitigator.k8s``."""
