#!/usr/bin/env bash
# Builds deploy/tools/grafana-validate (the strict Grafana dashboard and alert-rule validator:
# Grafana's Go foundation SDK plus icewatch's own checks) once into the cache, and prints the
# binary's path on stdout (progress goes to stderr). The build is skipped while the cached binary
# exists.
#
#   grafana_validator.sh            build if needed, print the path
#
# The binary is $ICEWATCH_CACHE/bin/grafana-validate-<hash of go.mod, go.sum and the *.go sources>; the
# Go module and build caches live under $ICEWATCH_CACHE/go. A cold build downloads the SDK from
# the Go module proxy: 34 s on 2 cores here (2026-11-26), up to 2 minutes on a busy machine.
# Environment (defaults in brackets):
#   ICEWATCH_CACHE [$HOME/.cache/icewatch]
#   GO [go on PATH, else /usr/local/go/bin/go]   Go 1.22 or newer
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$(cd "$HERE/../tools/grafana-validate" && pwd)"
CACHE_ROOT="${ICEWATCH_CACHE:-$HOME/.cache/icewatch}"

NAME=grafana_validator.sh
say() { echo "$NAME: $*" >&2; }
die() { echo "$NAME: ERROR: $*" >&2; exit 1; }

# Every Go source of the tool (tests aside) counts, so adding a file rebuilds.
sources=("$SRC/go.mod" "$SRC/go.sum")
while IFS= read -r f; do sources+=("$f"); done < <(find "$SRC" -maxdepth 1 -name '*.go' ! -name '*_test.go' | LC_ALL=C sort)
hash="$(cat "${sources[@]}" | sha256sum | cut -c1-16)"
binary="$CACHE_ROOT/bin/grafana-validate-$hash"

if [[ ! -x "$binary" ]]; then
  go_cmd="${GO:-}"
  if [[ -z "$go_cmd" ]]; then
    go_cmd="$(command -v go || true)"
    [[ -n "$go_cmd" || ! -x /usr/local/go/bin/go ]] || go_cmd=/usr/local/go/bin/go
  fi
  [[ -n "$go_cmd" ]] && command -v "$go_cmd" >/dev/null || die "Go not found (needed to build the dashboard validator).
  Install Go 1.22 or newer from https://go.dev/dl/ :
    curl -fsSLO https://go.dev/dl/go1.26.8.linux-amd64.tar.gz && tar -C /usr/local -xzf go1.26.8.linux-amd64.tar.gz
  then put /usr/local/go/bin on PATH (or set GO=/path/to/go). Debian's golang-go is too old."
  mkdir -p "$CACHE_ROOT/bin"
  # One build at a time (parallel test sessions share the cache).
  exec 8>"$CACHE_ROOT/.grafana-validate.lock"
  flock 8
  if [[ ! -x "$binary" ]]; then
    say "building $binary with $("$go_cmd" version) (a cold build takes 0.5 to 2 minutes)"
    started=$SECONDS
    tmp="$binary.tmp.$$"
    if ! (cd "$SRC" && GOMODCACHE="$CACHE_ROOT/go/mod" GOCACHE="$CACHE_ROOT/go/build" GOFLAGS=-mod=mod \
        "$go_cmd" build -p 1 -trimpath -o "$tmp" .) >&2; then
      rm -f "$tmp"
      die "go build of $SRC failed (see the output above)"
    fi
    mv "$tmp" "$binary"
    say "built in $((SECONDS - started))s"
  fi
  exec 8>&-
fi
say "validator: $binary"
echo "$binary"
