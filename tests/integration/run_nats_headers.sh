#!/usr/bin/env bash
# NATS headers <-> metadata against a real `nats-server -js` on free ports of
# 127.0.0.1: empty metadata values (middle and last header) go out through the
# nats output and come back through the nats input (JetStream and core) with
# every key; headers another client sends with empty values keep the others;
# a malformed header block is dead-lettered as invalid_input naming the
# subject (and stream sequence; JetStream: acked), never passed on without
# its metadata. (libnats 3.x alone loses them: docs/nats.md.)
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
[ -n "${KEEP_T:-}" ] && echo "temp dir $T"
. tests/lib.sh
cleanup_on_exit

. tests/integration/nats_lib.sh
if ! start_server; then
    bad "nats-server starts"
    cat "$T/server.log"
    finish
fi
ok "nats-server -js on 127.0.0.1:$PORT"

# payloads 0-3 through the nats output: empty values in the middle and last
cat >"$T/in.jsonl" <<'EOF'
{"payload": 0, "meta": {"a": "1", "mid": "", "b": "2", "last": ""}}
{"payload": 1, "meta": {"k": "v", "e": ""}}
{"payload": 2, "meta": {"e": "", "k": "v"}}
{"payload": 3, "meta": {"e1": "", "e2": ""}}
EOF
# payloads 10-13 by another client: "key:" empty in the middle, "key:" empty
# last, a line without ':' (malformed), no headers; then an empty payload
# with both (libnats reads the headers of those itself, rewriting the block)
raw() { # subject prefix
    python3 tests/tools/nats_hpub.py "$PORT" \
        "$1.raw" 'NATS/1.0\r\nX-A: 1\r\nX-Empty:\r\nX-B: 2\r\n\r\n' 10 \
        "$1.raw" 'NATS/1.0\r\nX-A: 1\r\nX-Last:\r\n\r\n' 11 \
        "$1.raw" 'NATS/1.0\r\nX-A: 1\r\nno colon here\r\n\r\n' 12 \
        "$1.raw" '' 13 \
        "$1.raw" 'NATS/1.0\r\nX-N: 14\r\nX-M:\r\nX-Last:\r\n\r\n' ''
}
consume() { # name, input yaml lines
    cat >"$T/$1.yaml" <<EOF
input:
$2
output: {file: {path: "$T/$1-out.jsonl"}}
dead_letter: {file: {path: "$T/$1-dead.jsonl"}}
EOF
    start_bg "$BIN" -c "$T/$1.yaml" --stats "$T/$1.stats" >"$T/$1.log" 2>&1
}

# ---- JetStream ----
printf 'input: {stdin: {}}\noutput:\n  nats: {urls: [%s], subject: he.x, jetstream: true, stream: HE, create_stream: true, stream_subjects: ["he.>"]}\n' \
    "$URL" >"$T/he-produce.yaml"
"$BIN" -c "$T/he-produce.yaml" <"$T/in.jsonl" >"$T/he-produce.log" 2>&1
check "JetStream: the nats output publishes the empty values (exit 0)" test $? = 0
check "JetStream: another client publishes its header blocks" raw he
acked() { jsz HE D | cut -d" " -f2; }
consume js "  nats: {urls: [$URL], subjects: [\"he.>\"], jetstream: {stream: HE, durable: D}}"
JP=$BG_PID
wait_until '[ "$(acked)" = 9 ]' 60 || echo "D did not ack all 9 messages"
stop_bg "$JP"
check "JetStream: SIGTERM exit 0" test $? = 0
check "JetStream: all keys and empty values back; the malformed block dead-lettered as invalid_input" \
    python3 tests/tools/check_nats_headers.py "$T/js-out.jsonl" "$T/js-dead.jsonl" "$T/js.stats" \
    "nats subject he.raw (stream HE sequence 7)"
check "JetStream: the dropped message is acked (ack floor 9)" test "$(acked)" = 9

# ---- core NATS ----
consume core "  nats: {urls: [$URL], subjects: [\"hc.>\"]}"
CP=$BG_PID
subs() { curl -sf "http://127.0.0.1:$MPORT/connz?subs=true" | grep -c '"hc\.'; }
check "core: subscription registered" wait_until '[ "$(subs)" -ge 1 ]' 30
printf 'input: {stdin: {}}\noutput:\n  nats: {urls: [%s], subject: hc.x}\n' "$URL" >"$T/hc-produce.yaml"
"$BIN" -c "$T/hc-produce.yaml" <"$T/in.jsonl" >"$T/hc-produce.log" 2>&1
check "core: the nats output publishes the empty values (exit 0)" test $? = 0
check "core: another client publishes its header blocks" raw hc
wait_until '[ "$(lines "$T/core-out.jsonl")" -ge 8 ] && [ "$(lines "$T/core-dead.jsonl")" -ge 1 ]' 30
stop_bg "$CP"
check "core: SIGTERM exit 0" test $? = 0
check "core: all keys and empty values back; the malformed block dead-lettered as invalid_input" \
    python3 tests/tools/check_nats_headers.py "$T/core-out.jsonl" "$T/core-dead.jsonl" "$T/core.stats" \
    "nats subject hc.raw"
finish
