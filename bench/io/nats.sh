#!/usr/bin/env bash
# `make bench-io`, NATS part: JetStream -> seed rules / passthrough ->
# JetStream and stdin -> JetStream (the output alone) against a local
# nats-server -js, next to file -> seed -> file of the same run, and, when
# libnats-dev happens to be installed (tagproc no longer uses it: its own
# client is src/io/nats/), the libnats floor of the JetStream -> JetStream
# path (bench/io/nats_floor.c: the same work with libnats calls, without
# tagproc). Helpers: bench/io_lib.sh.
. "$(dirname "$0")/../io_lib.sh"

# ---- NATS JetStream ----
nats_start() {
    [ -n "${NATS_URL:-}" ] && return
    local port mport
    port=$(free_port)
    mport=$(free_port)
    nats-server -js -a 127.0.0.1 -p "$port" -m "$mport" -sd "$T/js" >"$T/nats.log" 2>&1 &
    PIDS+=($!)
    NATS_URL="nats://127.0.0.1:$port"
    NATS_MON="http://127.0.0.1:$mport"
    wait_until "curl -sf $NATS_MON/healthz >/dev/null" 20 || { echo "nats-server did not start" >&2; exit 1; }
}
jsmsgs() { # STREAM: messages stored
    curl -sf "$NATS_MON/jsz?streams=true" | python3 -c '
import json, sys
d = json.load(sys.stdin); n = 0
for a in d.get("account_details", []):
    for s in a.get("stream_detail", []):
        if s["name"] == sys.argv[1]: n = s["state"]["messages"]
print(n)' "$1" 2>/dev/null || echo 0
}
nats_out() { # STREAM SUBJECT_PREFIX
    echo "  nats: {urls: [\"$NATS_URL\"], subject: \"$2.{{meta.opcua_node_id}}\", jetstream: true, stream: $1, create_stream: true, stream_subjects: [\"$2.>\"], dedup: false}"
}

case_nats() { # JetStream -> rules -> JetStream
    nats_start
    if [ "$(jsmsgs IN)" -lt "$MESSAGES" ]; then
        config passthrough "  stdin: {}" "$(nats_out IN raw)" | sed 's/{{meta.opcua_node_id}}/n/' >"$T/nfill.yaml"
        "$BIN" -c "$T/nfill.yaml" <"$T/in.jsonl" >/dev/null 2>"$T/nfill.err" || cat "$T/nfill.err" >&2
    fi
    local durable=0 base
    for rules in seed passthrough; do
        durable=$((durable + 1))
        base=$(jsmsgs OUT)
        local input="  nats: {urls: [\"$NATS_URL\"], subjects: [raw.>], jetstream: {stream: IN, durable: bench$durable}}"
        config $rules "$input" "$(nats_out OUT uns)" | sed 's/{{meta.opcua_node_id}}/x/' >"$T/nn.yaml"
        measure "nats:js->nats:js" $rules "$T/nn.yaml" "$MESSAGES" \
            "[ \$(jsmsgs OUT) -ge $((base + MESSAGES)) ]"
    done
}

case_nats_out() { # stdin -> passthrough -> JetStream: the output alone
    nats_start
    local base
    base=$(jsmsgs PROD)
    config passthrough "  stdin: {}" "$(nats_out PROD prod)" | sed 's/{{meta.opcua_node_id}}/n/' >"$T/np.yaml"
    measure "stdin->nats:js" passthrough "$T/np.yaml" "$MESSAGES" \
        "[ \$(jsmsgs PROD) -ge $((base + MESSAGES)) ]" "$T/in.jsonl"
}

case_nats_floor() { # libnats alone: pull, read headers, publish, PubAck, ack
    if ! pkg-config --exists libnats 2>/dev/null; then
        echo "(libnats floor skipped: libnats-dev is not installed; optional, see docs/nats.md)" >&2
        return
    fi
    nats_start
    cc -O2 bench/io/nats_floor.c -lnats -lpthread -o "$T/nats_floor" 2>"$T/floor.err" ||
        { cat "$T/floor.err" >&2; return; }
    "$T/nats_floor" "$NATS_URL" "$MESSAGES" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
r.update(case="libnats floor (nats_floor.c)", rules="passthrough")
print(json.dumps(r))' >>"$RESULTS"
}

case_file
case_nats
case_nats_out
case_nats_floor
echo "NATS JetStream ($MESSAGES seed messages):"
print_table
