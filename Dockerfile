# syntax=docker/dockerfile:1
#
# cnibench container image: both binaries, entrypoint the worker.
#
# Build and push (from the repository root; Cargo.lock must be present,
# the build is --locked):
#
#   docker build -t registry.example.com/cnibench:0.1.0 .
#   docker push registry.example.com/cnibench:0.1.0
#
# Multi-arch:  docker buildx build --platform linux/amd64,linux/arm64 \
#                -t registry.example.com/cnibench:0.1.0 --push .
#
# Then point manifests/ at it:  cd manifests/base &&
#   kustomize edit set image cnibench=registry.example.com/cnibench:0.1.0
# (see manifests/README.md).
#
# Runtime contents:
#   /usr/local/bin/cnibench-worker   (ENTRYPOINT; the DaemonSet runs it)
#   /usr/local/bin/cnibench          (coordinator; the Job/CronJob run it via `command:`)
# The image runs as uid/gid 65532 (non-root) and needs no capabilities.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# The whole workspace: cargo reads every member's manifest (proto, net, worker,
# coordinator, testkit) even when building two packages.
COPY . .
# Cache mounts keep the registry and target dir between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p cnibench-worker -p cnibench-coordinator \
 && mkdir -p /out \
 && cp target/release/cnibench target/release/cnibench-worker /out/

FROM ${RUNTIME_IMAGE} AS runtime
# A fixed numeric non-root user, so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin nonroot
COPY --from=build /out/cnibench /out/cnibench-worker /usr/local/bin/
USER 65532:65532
# Worker control port (the hostnetwork overlay uses 7100).
EXPOSE 7000
ENTRYPOINT ["/usr/local/bin/cnibench-worker"]
