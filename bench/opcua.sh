#!/usr/bin/env bash
# OPC UA input figures (docs/PERFORMANCE.md "OPC UA input"), all against the
# node-opcua test server (tests/opcua/server.js) on 127.0.0.1:
#  1. browse + subscribe N (default 10000) variables: seconds from start to
#     "connected ... subscribed";
#  2. the same N variables changing every second: tagproc (opcua input, drop
#     output) and a node-opcua client script (bench/opcua_client.js) subscribe
#     at the same time; values received and CPU seconds of each over a WINDOW
#     (default 60 s: CPU is read in 10 ms ticks) -> CPU per value, and the ratio;
#  3. BIG (default 100000) variables: browse + subscribe time and tagproc's
#     peak RSS.
# Prints one JSON object per figure. Environment: N, BIG, WINDOW.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-build/tagproc}
N=${N:-10000}
BIG=${BIG:-100000}
WINDOW=${WINDOW:-60}
T=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
. tests/lib.sh
MODULES=$(bash scripts/opcua-test-server.sh --install)
ticks=$(getconf CLK_TCK)
cpu_s() { awk -v t="$ticks" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
metric() { # value of tagproc_input_received_total from the /metrics port $1
    curl -s "http://127.0.0.1:$1/metrics" | awk '/^tagproc_input_received_total/ {print $2}'
}

start_server() { # variables, change period ms
    PORT=$(free_port)
    # a log per server: the redirection happens in the background child, so
    # a shared log could still show the previous server's READY
    LOG=$T/server-$1.log
    PORT=$PORT N_VARS=$1 SCALE_MS=$2 NODE_PATH=$MODULES node --max-old-space-size=8192 \
        tests/opcua/server.js >"$LOG" 2>&1 &
    SERVER=$!
    PIDS+=("$SERVER")
    wait_until "grep -qs READY $LOG || ! kill -0 $SERVER" 900
    grep -q READY "$LOG" || { cat "$LOG" >&2; exit 1; }
}

run_tagproc() { # variables, http port
    cat >"$T/tp.yaml" <<YAML
input:
  opcua: {endpoint: "opc.tcp://127.0.0.1:$PORT", nodeIDs: ["ns=2;s=Scale"], subscribeEnabled: true}
http: {address: "127.0.0.1:$2"}
output:
  drop: {}
YAML
    START=$(date +%s.%N)
    SERVER_CPU0=$(cpu_s "$SERVER")
    "$BIN" -c "$T/tp.yaml" >/dev/null 2>"$T/tp-$1.err" &
    TP=$!
    PIDS+=("$TP")
    wait_until "grep -q 'opcua: connected' $T/tp-$1.err || ! kill -0 $TP" 900
    SETUP=$(python3 -c "import time; print(round(time.time() - $START, 2))")
    # CPU seconds of the server and of tagproc for the browse + subscribe
    SETUP_CPU="\"server_cpu_s\":$(python3 -c "print(round($(cpu_s "$SERVER") - $SERVER_CPU0, 2))"),\"tagproc_cpu_s\":$(cpu_s "$TP"),\"load\":$(cut -d' ' -f1 /proc/loadavg)"
    grep -q "($1 variables, subscribed)" "$T/tp-$1.err" || { cat "$T/tp-$1.err" >&2; exit 1; }
}

# ---- 1 + 2: N variables ----
start_server "$N" 1000
HTTP=$(free_port)
run_tagproc "$N" "$HTTP"
echo "{\"figure\":\"browse+subscribe\",\"variables\":$N,\"seconds\":$SETUP,$SETUP_CPU}"
sleep 3
ENDPOINT=opc.tcp://127.0.0.1:$PORT N_VARS=$N SECONDS_WINDOW=$WINDOW NODE_PATH=$MODULES \
    node bench/opcua_client.js >"$T/client.json" 2>"$T/client.err" &
CLIENT=$!
PIDS+=("$CLIENT")
# both windows start when the client has its monitored items (a loaded
# server takes long to create them, and is busy meanwhile)
wait_until "grep -qs ready $T/client.json || ! kill -0 $CLIENT" 900
c0=$(cpu_s "$TP")
v0=$(metric "$HTTP")
s0=$(cpu_s "$SERVER")
sleep "$WINDOW"
c1=$(cpu_s "$TP")
v1=$(metric "$HTTP")
s1=$(cpu_s "$SERVER")
wait "$CLIENT" || { cat "$T/client.err" >&2; exit 1; }
python3 - "$c0" "$c1" "$v0" "$v1" "$s0" "$s1" "$WINDOW" "$T/client.json" <<'PY'
import json, sys
c0, c1, v0, v1, s0, s1, window = map(float, sys.argv[1:8])
client = [json.loads(l) for l in open(sys.argv[8]) if l.startswith('{"values"')][-1]
tp_values, tp_cpu = v1 - v0, c1 - c0
out = {"figure": "subscribed notifications", "window_s": window,
       "tagproc": {"values": int(tp_values), "values_per_s": round(tp_values / window),
                   "cpu_s": round(tp_cpu, 3), "cpu_us_per_value": round(tp_cpu / max(tp_values, 1) * 1e6, 2)},
       "node_opcua_client": {"values": client["values"], "values_per_s": round(client["values"] / window),
                             "cpu_s": round(client["cpu_s"], 3),
                             "cpu_us_per_value": round(client["cpu_s"] / max(client["values"], 1) * 1e6, 2),
                             "setup_s": client["setup_s"]},
       "server_cpu_share": round((s1 - s0) / window, 2)}
out["ratio_tagproc_to_node_opcua"] = round(out["tagproc"]["cpu_us_per_value"] / max(out["node_opcua_client"]["cpu_us_per_value"], 1e-9), 3)
print(json.dumps(out))
PY
kill -TERM "$TP" "$SERVER"
wait "$TP" "$SERVER" 2>/dev/null || true

# ---- 3: BIG variables, RSS ----
start_server "$BIG" 0
HTTP=$(free_port)
run_tagproc "$BIG" "$HTTP"
sleep 10 # the first Publish responses carry every variable's current value
RSS=$(awk '/VmHWM/ {print $2}' "/proc/$TP/status")
echo "{\"figure\":\"scale\",\"variables\":$BIG,\"browse_subscribe_s\":$SETUP,$SETUP_CPU,\"peak_rss_mb\":$((RSS / 1024))}"
kill -TERM "$TP" "$SERVER"
wait "$TP" "$SERVER" 2>/dev/null || true
