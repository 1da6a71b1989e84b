#!/usr/bin/env bash
# make demo: `icewatch run` on its own data directory (var/demo by default, never var/icewatch), fed by
# the simulator (collector/simulator): a normal period, then one scripted incident; then the queries
# that show it. Demo data only: simulated clients, a demo GeoIP database, a simulated probe vantage.
#
# Settings (environment): DEMO_DIR (var/demo), DEMO_PORT (8090), DEMO_NORMAL_S (45), DEMO_INCIDENT_S (60),
# DEMO_RECOVERY_S (30: normal again after the incident), DEMO_INCIDENT (turn-down:turn-eu-1),
# DEMO_RATE (200 calls per minute), DEMO_SEED (7). The alert evaluator of `icewatch run` runs the
# whole time; the demo prints when each alert fired and waits (up to 120 s) for it to resolve.
# That wait is mostly the rule's keep_firing_for (turn-server-down: 45 s after its probes succeed
# again); DEMO_KEEP_FIRING_S (unset: each rule's own) caps it through ICEWATCH_ALERTS__KEEP_FIRING_FOR_MAX_S,
# e.g. 10 (one evaluation interval) for a shorter demo: the alert still fires and resolves.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${VENV:-.venv}/bin
DEMO=${DEMO_DIR:-var/demo}
PORT=${DEMO_PORT:-8090}
NORMAL=${DEMO_NORMAL_S:-45}
INCIDENT_S=${DEMO_INCIDENT_S:-60}
RECOVERY_S=${DEMO_RECOVERY_S:-30}
INCIDENT=${DEMO_INCIDENT:-turn-down:turn-eu-1}
RATE=${DEMO_RATE:-200}
SEED=${DEMO_SEED:-7}
KEEP_FIRING=${DEMO_KEEP_FIRING_S:-}
INVENTORY=deploy/inventory.example.yaml

if "$BIN/python" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
     "http://127.0.0.1:$PORT/healthz" 2>/dev/null; then
  echo "demo: something already answers on 127.0.0.1:$PORT; stop it or set DEMO_PORT" >&2
  exit 1
fi
rm -rf "$DEMO"
mkdir -p "$DEMO/turn"
"$BIN/icewatch" --log-level WARNING simulate --inventory "$INVENTORY" --write-geoip "$DEMO/demo-geoip.mmdb"
TURN_LOGS=$("$BIN/python" - "$INVENTORY" "$DEMO/turn" <<'PY'
import json, sys
from pathlib import Path
from collector.inventory import load_inventory
inv = load_inventory(sys.argv[1])
logs = []
for s in inv.servers:
    path = Path(sys.argv[2]) / f"{s.id}.log"
    path.touch()
    logs.append({"path": str(path), "server_id": s.id, "region": s.region})
print(json.dumps(logs))
PY
)
export ICEWATCH_DATA_DIR="$DEMO/data" ICEWATCH_PORT="$PORT" ICEWATCH_INVENTORY="$INVENTORY" \
       ICEWATCH_GEOIP_DB="$DEMO/demo-geoip.mmdb" ICEWATCH_HASH_KEY="demo-only-hash-key" \
       ICEWATCH_METRICS_PORT=0 ICEWATCH_TURN_LOGS="$TURN_LOGS"
unset ICEWATCH_KAFKA__BOOTSTRAP ICEWATCH_CLICKHOUSE__HOST ICEWATCH_API_KEYS
if [[ -n $KEEP_FIRING ]]; then export ICEWATCH_ALERTS__KEEP_FIRING_FOR_MAX_S="$KEEP_FIRING"; fi
"$BIN/icewatch" --log-level WARNING run >"$DEMO/run.log" 2>&1 &
RUN_PID=$!
trap 'kill "$RUN_PID" 2>/dev/null; wait "$RUN_PID" 2>/dev/null || true' EXIT
up=0
for _ in $(seq 1 150); do
  kill -0 "$RUN_PID" 2>/dev/null || break
  if "$BIN/python" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" \
       "http://127.0.0.1:$PORT/healthz" 2>/dev/null; then up=1; break; fi
  sleep 0.2
done
if [[ $up != 1 ]] || ! kill -0 "$RUN_PID" 2>/dev/null; then
  echo "demo: icewatch run did not start:" >&2
  tail -20 "$DEMO/run.log" >&2
  exit 1
fi
echo "demo: icewatch run on http://127.0.0.1:$PORT (store in $DEMO/data); $NORMAL s normal, then $INCIDENT for" \
     "$INCIDENT_S s, then $RECOVERY_S s normal; open http://127.0.0.1:$PORT/ to watch"
"$BIN/python" deploy/local/demo_alerts.py "http://127.0.0.1:$PORT" $((NORMAL + INCIDENT_S + RECOVERY_S)) 120 \
  >"$DEMO/alerts.txt" &
ALERTS_PID=$!
"$BIN/icewatch" --log-level WARNING simulate --inventory "$INVENTORY" --seed "$SEED" --rate "$RATE" \
  --duration $((NORMAL + INCIDENT_S + RECOVERY_S)) --incident "$INCIDENT@$NORMAL+$INCIDENT_S" \
  --turn-log-dir "$DEMO/turn" --probe-interval 10
sleep 3  # the tailers' last lines
q() { echo; echo "\$ icewatch query $*"; "$BIN/icewatch" --log-level WARNING query "$@" --url "http://127.0.0.1:$PORT"; }
q diagnosis --since 1h --by region,minute
q relay-usage --since 1d --by region,turn-region,protocol
q turn-servers --since 1h --by turn-server,minute
q probes --since 1h --by turn-server,minute
alerts_ok=0
wait "$ALERTS_PID" || alerts_ok=$?
cat "$DEMO/alerts.txt"
echo
echo "demo: the incident ($INCIDENT) started about $NORMAL s in. Look for: turn_unreachable / ice_failed"
echo "      diagnoses in its region's minutes, the server's log lines and allocations stopping, its probes failing."
echo "      The demo store stays in $DEMO until the next make demo; icewatch run has been stopped."
if [[ $alerts_ok != 0 ]]; then
  echo "demo: an alert did not resolve after the incident (see above and $DEMO/run.log)" >&2
  exit 1
fi
