#!/usr/bin/env bash
# Installs what `make test` / `make run` need, and nothing that is already there:
#   packages  Debian packages for the real services (only as root; apt-get update once, then install)
#   venv      .venv at the repo root + `pip install -e '.[dev]'` (skipped while pyproject.toml is unchanged)
#   kafka     the Kafka broker jars from Maven Central (deploy/local/kafka.sh fetch, cached)
#   charts    the dashboard pages' chart library and, with the dev extras, the Telnyx SDK of
#             test_telnyx_sdk.py (deploy/local/npm_assets.sh: npm ci, cached)
#   validator the strict Grafana dashboard validator (deploy/local/grafana_validator.sh: go build, cached)
#   deploy    helm + kubernetes-validate for the deployment tests (deploy/local/deploy_tools.sh, cached)
#
# Usage: bootstrap.sh [--all | --runtime | --packages | --venv | --kafka | --charts | --validator | --deploy ...] [--no-dev]
#   (no flag)   everything: packages, venv with the dev extras, kafka jars, charts, validator, deploy (make test)
#   --runtime   venv without the dev extras, and charts                          (make run)
#   --packages / --venv / --kafka / --charts / --validator / --deploy   only the named parts (combinable)
# Environment:
#   ICEWATCH_SKIP_APT=1   never call apt-get; missing packages are only reported
#   PYTHON [python3]      interpreter for a new .venv (3.11+)
#   VENV [<repo>/.venv]   plus everything kafka.sh reads (KAFKA_VERSION, ICEWATCH_CACHE, ...)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${VENV:-$REPO/.venv}"
PYTHON="${PYTHON:-python3}"
PACKAGES=(clickhouse-server coturn chromium iproute2 nftables prometheus-alertmanager prometheus docker-compose)  # prometheus: promtool

say() { echo "bootstrap: $*"; }
die() { echo "bootstrap: ERROR: $*" >&2; exit 1; }

want_packages=0 want_venv=0 want_kafka=0 want_charts=0 want_validator=0 want_deploy=0 extras="[dev]"
if (($# == 0)); then
  want_packages=1 want_venv=1 want_kafka=1 want_charts=1 want_validator=1 want_deploy=1
fi
for arg in "$@"; do
  case "$arg" in
    --all) want_packages=1 want_venv=1 want_kafka=1 want_charts=1 want_validator=1 want_deploy=1 ;;
    --runtime) want_venv=1 want_charts=1 extras="" ;;
    --packages) want_packages=1 ;;
    --venv) want_venv=1 ;;
    --kafka) want_kafka=1 ;;
    --charts) want_charts=1 ;;
    --validator) want_validator=1 ;;
    --deploy) want_deploy=1 ;;
    --no-dev) extras="" ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) die "unknown argument '$arg' (see --help)" ;;
  esac
done

installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

ensure_packages() {
  local wanted=("$@") missing=() p
  command -v dpkg-query >/dev/null || die "not a Debian system (no dpkg-query); install ${wanted[*]} by hand"
  for p in "${wanted[@]}"; do
    installed "$p" || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    say "Debian packages present: ${wanted[*]}"
    return 0
  fi
  if [[ "${ICEWATCH_SKIP_APT:-0}" == 1 ]]; then
    say "WARNING: missing Debian packages (ICEWATCH_SKIP_APT=1, not installing): ${missing[*]}"
    return 0
  fi
  if ((EUID != 0)); then
    die "missing Debian packages: ${missing[*]}
  install them:  sudo apt-get install -y --no-install-recommends ${missing[*]}
  or set ICEWATCH_SKIP_APT=1 to go on without them (tests needing them will fail)"
  fi
  if [[ -z "${APT_UPDATED:-}" ]]; then
    say "apt-get update"
    apt-get -o DPkg::Lock::Timeout=300 update -q || die "apt-get update failed"
    APT_UPDATED=1
  fi
  # Keep package scripts from starting system daemons (coturn, clickhouse-server): the tests
  # start their own instances on 127.0.0.1 and free ports.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
  fi
  say "apt-get install -y --no-install-recommends ${missing[*]}"
  local rc=0
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
    --no-install-recommends "${missing[@]}" || rc=$?
  if ((made_policy)); then rm -f "$policy"; fi
  ((rc == 0)) || die "apt-get install failed (exit $rc) for: ${missing[*]}"
}

ensure_venv() {
  if [[ ! -x "$VENV/bin/python" ]]; then
    command -v "$PYTHON" >/dev/null || die "'$PYTHON' not found; icewatch needs Python 3.11+"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
      || die "$PYTHON is $("$PYTHON" -V 2>&1); icewatch needs Python 3.11+ (set PYTHON=...)"
    if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
      ensure_packages python3-venv
    fi
    say "creating $VENV with $("$PYTHON" -V 2>&1)"
    "$PYTHON" -m venv "$VENV" || die "could not create $VENV"
  fi
  local stamp="$VENV/.icewatch-install.stamp" hash have
  hash="$(sha256sum "$REPO/pyproject.toml" | cut -d' ' -f1)"
  have="$(cat "$stamp" 2>/dev/null || true)"
  # A dev install also satisfies a runtime request.
  if [[ "$have" == "$hash [dev]" || ( -z "$extras" && "$have" == "$hash " ) ]]; then
    say "venv up to date ($VENV, pyproject.toml unchanged)"
    return 0
  fi
  say "pip install -e '.$extras' into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip || die "pip upgrade failed"
  (cd "$REPO" && "$VENV/bin/python" -m pip install -q -e ".$extras") || die "pip install -e '.$extras' failed"
  echo "$hash $extras" >"$stamp"
}

started=$SECONDS
if ((want_packages)); then ensure_packages "${PACKAGES[@]}"; fi
if ((want_kafka)); then
  for tool in java mvn; do
    if ! command -v "$tool" >/dev/null; then
      ensure_packages openjdk-17-jre-headless maven
      break
    fi
  done
  "$HERE/kafka.sh" fetch || die "Kafka jar fetch failed"
fi
if ((want_venv)); then ensure_venv; fi
if ((want_charts)); then
  "$HERE/npm_assets.sh" dashboards/pages node_modules/uplot/dist/uPlot.iife.min.js \
    node_modules/uplot/dist/uPlot.min.css || die "chart assets install failed"
fi
# With the dev extras (make test), also the Telnyx SDK that test_telnyx_sdk.py loads (npm ci, cached).
if ((want_charts)) && [[ -n "$extras" ]]; then
  "$HERE/npm_assets.sh" tests/telnyx_sdk node_modules/@telnyx/webrtc/lib/bundle.js || die "Telnyx SDK install failed"
fi
if ((want_validator)); then "$HERE/grafana_validator.sh" >/dev/null || die "grafana-validate build failed"; fi
if ((want_deploy)); then "$HERE/deploy_tools.sh" >/dev/null || die "deploy tools install failed"; fi
say "done in $((SECONDS - started))s"
