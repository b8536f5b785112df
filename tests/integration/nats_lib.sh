# NATS test helpers, sourced by the run_nats*.sh scripts after tests/lib.sh:
# a `nats-server -js` on free ports of 127.0.0.1 (PORT, MPORT, URL; its store
# and log under $T) and `jsz`, the stream and consumer counters read from
# its monitoring port.
PORT=$(free_port)
MPORT=$(free_port)
URL=nats://127.0.0.1:$PORT

# start_server: starts (or restarts) the server, SERVER_PID; 0 once it is
# healthy with JetStream on.
start_server() {
    start_bg nats-server -js -a 127.0.0.1 -p "$PORT" -m "$MPORT" -sd "$T/store" >>"$T/server.log" 2>&1
    SERVER_PID=$BG_PID
    wait_until "curl -sf http://127.0.0.1:$MPORT/healthz?js-enabled-only=true >/dev/null" 30
}
# jsz STREAM [CONSUMER]: "messages ack_floor_stream_seq num_ack_pending num_pending redelivered"
jsz() {
    curl -sf "http://127.0.0.1:$MPORT/jsz?streams=true&consumers=true" | python3 -c '
import json, sys
d = json.load(sys.stdin); st, co = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None
for a in d.get("account_details", []):
    for s in a.get("stream_detail", []):
        if s["name"] != st: continue
        out = [s["state"]["messages"], 0, 0, 0, 0]
        for c in s.get("consumer_detail", []) or []:
            if c["name"] == co:
                out[1:] = [c["ack_floor"]["stream_seq"], c["num_ack_pending"], c["num_pending"], c["num_redelivered"]]
        print(*out); sys.exit(0)
print("0 0 0 0 0")' "$@"
}
