# Helpers shared by the service scripts in deploy/local (sourced; the script sets NAME first).

say() { echo "$NAME: $*"; }
die() { echo "$NAME: ERROR: $*" >&2; exit 1; }

# pid_from_file PID_FILE PATTERN CONFIG: the PID in the file, if that process is alive and its
# command line has PATTERN and CONFIG (so a reused PID of another program never matches).
pid_from_file() {
  local pid cmd
  [[ -f "$1" ]] || return 1
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/cmdline" ]] || return 1
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *"$2"* && "$cmd" == *"$3"* ]] || return 1
  echo "$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# fail_with_logs MESSAGE LOG...: the error, the tail of each log that exists, exit 1.
fail_with_logs() {
  echo "$NAME: ERROR: $1" >&2
  shift
  local f
  for f in "$@"; do
    [[ -f "$f" ]] || continue
    echo "---- last lines of $f ----" >&2
    tail -n 40 "$f" >&2
  done
  exit 1
}

# terminate PID TIMEOUT: SIGTERM, wait; SIGKILL after TIMEOUT seconds (then returns 1).
terminate() {
  local pid="$1" timeout="$2"
  local deadline=$((SECONDS + timeout))
  say "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      say "pid $pid still alive after ${timeout}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      return 1
    fi
    sleep 0.1
  done
}
