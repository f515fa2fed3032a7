# mitigator's image: `mitigator run` (the operator) and `mitigator bridge` (the Alertmanager
# receiver). Build (no image can be built on the development machine; see README "Image"):
#   docker build -t ghcr.io/luminamind/mitigator:0.1.0 .
#
# Two stages: the builder makes a virtualenv from the lock file (requirements/runtime.txt,
# with hashes, when the repository has one; else pyproject.toml's ranges); the final stage
# is the same slim Python with only that virtualenv copied in: no pip cache, no compilers,
# no sources. It runs as a numeric non-root user (the pods' runAsUser) on a read-only root
# filesystem.

ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/mitigator
ENV PATH=/opt/mitigator/bin:$PATH
# The lock first (its own layer: dependencies change less often than the code). The bracket
# makes requirements/ optional (a pattern that matches nothing copies nothing, as long as
# another source does); its files (the lock: runtime.txt) land beside pyproject.toml.
COPY pyproject.toml README.md requirement[s] ./
RUN if [ -f runtime.txt ]; then \
      pip install --no-cache-dir --require-hashes -r runtime.txt; \
    fi
COPY operator/ operator/
# With a lock, the dependencies are already exactly those; the package adds none of its own.
RUN if [ -f runtime.txt ]; then \
      pip install --no-cache-dir --no-deps .; \
    else \
      pip install --no-cache-dir .; \
    fi \
 && mitigator --help >/dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="mitigator" \
      org.opencontainers.image.description="Kubernetes incident mitigation operator" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/mitigator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=builder /opt/mitigator /opt/mitigator
USER 65532:65532
ENTRYPOINT ["mitigator"]
CMD ["run"]
