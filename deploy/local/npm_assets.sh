#!/usr/bin/env bash
# Installs the npm packages pinned in <dir>/package-lock.json into <dir>/node_modules with `npm ci`,
# only when they are missing or stale. Used for the dashboard pages' chart library
# (dashboards/pages: uPlot) and the Telnyx SDK of test_telnyx_sdk.py (tests/telnyx_sdk).
# Fresh means: node_modules holds a stamp with the lock file's sha256 (written after a good install)
# and every <file> named after <dir> (relative to <dir>) exists; then it does nothing.
# Downloads stay in npm's cache (~/.npm) and `--prefer-offline` uses them, so a reinstall on a
# machine that ran this once needs no network.
#
# Usage: npm_assets.sh [--force] <dir> [<file>...]   (<dir> relative to the repo root, or absolute)
#   e.g. npm_assets.sh dashboards/pages node_modules/uplot/dist/uPlot.iife.min.js
# Environment:
#   NPM [npm]   the npm client to use
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
NPM="${NPM:-npm}"

say() { echo "npm_assets: $*"; }
die() { echo "npm_assets: ERROR: $*" >&2; exit 1; }

force=0 dir="" needed=()
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) die "unknown option '$arg' (see --help)" ;;
    *) if [[ -z "$dir" ]]; then dir="$arg"; else needed+=("$arg"); fi ;;
  esac
done
[[ -n "$dir" ]] || die "which directory? (see --help)"
[[ "$dir" == /* ]] || dir="$REPO/$dir"
[[ -d "$dir" ]] || die "$dir is not a directory"
DIR="$(cd "$dir" && pwd)"
for f in "${needed[@]}"; do
  # The files must lie inside node_modules of <dir>: no absolute paths, no way out with '..'.
  [[ "$f" == node_modules/* && "$f" != *..* ]] || die "'$f' is not a path under node_modules/"
done
STAMP="$DIR/node_modules/.icewatch-lock.sha256"

[[ -f "$DIR/package-lock.json" ]] || die "$DIR/package-lock.json is missing"
lock_hash="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
fresh=1
[[ "$(cat "$STAMP" 2>/dev/null || true)" == "$lock_hash" ]] || fresh=0
for f in "${needed[@]}"; do
  [[ -f "$DIR/$f" ]] || fresh=0
done
if ((fresh && !force)); then
  say "up to date ($DIR/node_modules)"
  exit 0
fi

command -v "$NPM" >/dev/null || die "'$NPM' not found: $DIR needs it once for its npm packages
  install it:  sudo apt-get install -y --no-install-recommends npm   (or Node.js 18+ from nodejs.org)
  then run:    bash deploy/local/npm_assets.sh $*"
say "npm ci in $DIR"
(cd "$DIR" && "$NPM" ci --prefer-offline --no-audit --no-fund --loglevel=error) || die "npm ci failed in $DIR"
for f in "${needed[@]}"; do
  [[ -f "$DIR/$f" ]] || die "npm ci did not install $f in $DIR"
done
echo "$lock_hash" >"$STAMP"
# The direct dependencies as installed (name@version), for the log.
versions="$(cd "$DIR" && node -e '
  const deps = Object.keys(require("./package.json").dependencies || {});
  console.log(deps.map((d) => d + "@" + require("./node_modules/" + d + "/package.json").version).join(" "));
' 2>/dev/null || echo '(versions unknown)')"
say "installed $versions in $DIR/node_modules"
