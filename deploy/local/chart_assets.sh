#!/usr/bin/env bash
# Installs the chart library of the built-in dashboard pages (uPlot, pinned in
# dashboards/pages/package-lock.json) into dashboards/pages/node_modules with `npm ci`, only when
# node_modules is missing or stale (installed from another lock file: a stamp keeps its hash).
# npm keeps its downloads in ~/.npm and is asked to prefer them (--prefer-offline), so a reinstall
# needs no network once the cache is filled.
#
# Usage: chart_assets.sh [--force]
# Environment:
#   NPM [npm]   the npm client to use
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PAGES="$REPO/dashboards/pages"
NPM="${NPM:-npm}"
STAMP="$PAGES/node_modules/.icewatch-lock.sha256"
NEEDED=(node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css)

say() { echo "chart_assets: $*"; }
die() { echo "chart_assets: ERROR: $*" >&2; exit 1; }

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) die "unknown argument '$arg' (see --help)" ;;
  esac
done

[[ -f "$PAGES/package-lock.json" ]] || die "$PAGES/package-lock.json is missing"
hash="$(sha256sum "$PAGES/package-lock.json" | cut -d' ' -f1)"
fresh=1
for f in "${NEEDED[@]}"; do
  [[ -f "$PAGES/$f" ]] || fresh=0
done
[[ "$(cat "$STAMP" 2>/dev/null || true)" == "$hash" ]] || fresh=0
if ((fresh && !force)); then
  say "chart assets up to date ($PAGES/node_modules)"
  exit 0
fi

if ! command -v "$NPM" >/dev/null; then
  die "'$NPM' not found: the dashboard pages need it once to install their chart library (uPlot)
  install it:  sudo apt-get install -y --no-install-recommends npm   (or Node.js 18+ from nodejs.org)
  then run:    bash deploy/local/chart_assets.sh"
fi
say "npm ci in $PAGES"
(cd "$PAGES" && "$NPM" ci --prefer-offline --no-audit --no-fund --loglevel=error) || die "npm ci failed in $PAGES"
for f in "${NEEDED[@]}"; do
  [[ -f "$PAGES/$f" ]] || die "npm ci did not install $f"
done
echo "$hash" >"$STAMP"
say "installed $(cd "$PAGES" && node -p 'require("./node_modules/uplot/package.json").version' 2>/dev/null || echo uplot)"
