#!/usr/bin/env bash
# Installs the unmodified Telnyx WebRTC SDK that tests/integration/test_telnyx_sdk.py loads in
# Chromium: @telnyx/webrtc, pinned in tests/telnyx_sdk/package-lock.json, into
# tests/telnyx_sdk/node_modules with `npm ci`. Does nothing while node_modules was installed from
# the same lock file (a stamp file holds the lock's sha256) and still holds the SDK's bundle.
# Downloads stay in npm's cache (~/.npm) and `--prefer-offline` uses them, so a clean clone on a
# machine that ran this once needs no network.
#
# Usage: telnyx_sdk.sh [--force]
# Environment:
#   NPM [npm]   the npm client to use
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="$(cd "$HERE/../.." && pwd)/tests/telnyx_sdk"
NPM="${NPM:-npm}"
STAMP="$DIR/node_modules/.icewatch-lock.sha256"
BUNDLE="node_modules/@telnyx/webrtc/lib/bundle.js"

say() { echo "telnyx_sdk: $*"; }
die() { echo "telnyx_sdk: ERROR: $*" >&2; exit 1; }

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) die "unknown argument '$arg' (see --help)" ;;
  esac
done

[[ -f "$DIR/package-lock.json" ]] || die "$DIR/package-lock.json is missing"
lock_hash="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
if ((!force)) && [[ -f "$DIR/$BUNDLE" && "$(cat "$STAMP" 2>/dev/null || true)" == "$lock_hash" ]]; then
  say "up to date ($DIR/node_modules)"
  exit 0
fi

command -v "$NPM" >/dev/null || die "'$NPM' not found: the Telnyx SDK test needs it once
  install it:  sudo apt-get install -y --no-install-recommends npm   (or Node.js 18+ from nodejs.org)
  then run:    bash deploy/local/telnyx_sdk.sh"
say "npm ci in $DIR"
(cd "$DIR" && "$NPM" ci --prefer-offline --no-audit --no-fund --loglevel=error) || die "npm ci failed in $DIR"
[[ -f "$DIR/$BUNDLE" ]] || die "npm ci did not install $BUNDLE"
echo "$lock_hash" >"$STAMP"
say "installed @telnyx/webrtc $(node -p 'require(process.argv[1]).version' "$DIR/node_modules/@telnyx/webrtc/package.json" 2>/dev/null || echo '(version unknown)')"
