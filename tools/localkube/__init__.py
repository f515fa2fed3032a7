"""A real local Kubernetes control plane (etcd, kube-apiserver, controller-manager,
scheduler, kwok) plus Prometheus and Alertmanager, built from Go modules and Debian
packages and run on loopback for tests, benchmarks and the demo."""
