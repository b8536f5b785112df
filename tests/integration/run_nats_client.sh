#!/usr/bin/env bash
# tagproc's own NATS client (src/io/nats/client.c) against servers that fail:
# a fake server (tests/tools/nats_fake_server.py) that answers the handshake
# with a malformed line or -ERR 'Authorization Violation' (tagproc exits 1
# naming the server and the line), sends a malformed MSG line or
# -ERR 'Slow Consumer' mid-session (logged, the client reconnects, SIGTERM
# exits 0); a real `nats-server` with user/password (wrong password refused
# clearly, right one works); and a real `nats-server -js` killed (-9) and
# restarted while the JetStream output has batches in flight
# (output.max_in_flight 8): the stream then holds every message exactly once
# and in input order.
set -u
BIN=$(realpath "${1:-build/tagproc}")
BUILD=${2:-build}
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
[ -n "${KEEP_T:-}" ] && echo "temp dir $T"
. tests/lib.sh
cleanup_on_exit

N=60000
case "$BUILD" in *asan*) N=15000 ;; esac

# ---- a fake server ----
fake() { # mode: starts it on FPORT, FAKE_PID
    FPORT=$(free_port)
    : >"$T/fake-$1.log"
    start_bg python3 tests/tools/nats_fake_server.py "$FPORT" "$1" "$T/fake-$1.log"
    FAKE_PID=$BG_PID
    wait_port "$FPORT" 20
}
core_in() { # port, file
    printf 'input:\n  nats: {urls: [nats://127.0.0.1:%s], subjects: [a.>], reconnect_wait: 100ms}\noutput: {file: {path: "%s"}}\n' "$1" "$2"
}

fake garbage-handshake
core_in "$FPORT" "$T/g.jsonl" >"$T/g.yaml"
timeout 30 "$BIN" -c "$T/g.yaml" >"$T/g.log" 2>&1
check "malformed handshake: exit 1" test $? = 1
check "malformed handshake: the error names the server and the line" grep -qF \
    "input.nats: cannot connect to nats://127.0.0.1:$FPORT: malformed protocol line from the server: not a NATS protocol line: \"HELLO garbage\"" "$T/g.log"
stop_bg "$FAKE_PID"

fake auth-error
core_in "$FPORT" "$T/a.jsonl" >"$T/a.yaml"
timeout 30 "$BIN" -c "$T/a.yaml" >"$T/a.log" 2>&1
check "-ERR in the handshake: exit 1" test $? = 1
check "-ERR in the handshake: the error quotes the server" grep -qF \
    "input.nats: cannot connect to nats://127.0.0.1:$FPORT: the server refused the connection: Authorization Violation" "$T/a.log"
stop_bg "$FAKE_PID"

for mode in garbage-later slow-consumer; do
    fake $mode
    core_in "$FPORT" "$T/$mode.jsonl" >"$T/$mode.yaml"
    start_bg "$BIN" -c "$T/$mode.yaml" >"$T/$mode.log" 2>&1
    TP=$BG_PID
    wait_until "[ \$(lines $T/fake-$mode.log) -ge 3 ]" 30
    check "$mode: the client reconnects after the failure ($(lines "$T/fake-$mode.log") connections)" \
        test "$(lines "$T/fake-$mode.log")" -ge 3
    stop_bg "$TP"
    check "$mode: SIGTERM exit 0" test $? = 0
    stop_bg "$FAKE_PID"
done
check "malformed MSG line: logged with the line" grep -qF \
    'malformed protocol line from the server: invalid or too large size: "MSG a.b 1 notasize"' \
    "$T/garbage-later.log"
check "-ERR 'Slow Consumer': logged" grep -qF \
    "the server reported an error: Slow Consumer" "$T/slow-consumer.log"

# ---- user/password against a real server ----
APORT=$(free_port)
start_bg nats-server -a 127.0.0.1 -p "$APORT" --user tp --pass s3cret >"$T/auth-server.log" 2>&1
AUTH_PID=$BG_PID
wait_port "$APORT" 20
printf '{"payload": 1, "meta": {"umh_topic": "a.b"}}\n' >"$T/one.jsonl"
auth_out() { # password
    printf 'input: {stdin: {}}\noutput:\n  nats: {urls: [nats://127.0.0.1:%s], user: tp, password: %s}\n' "$APORT" "$1"
}
auth_out wrong >"$T/auth-bad.yaml"
"$BIN" -c "$T/auth-bad.yaml" <"$T/one.jsonl" >"$T/auth-bad.log" 2>&1
check "wrong password: exit 1" test $? = 1
check "wrong password: the server's refusal is quoted" grep -qF \
    "output.nats: cannot connect to nats://127.0.0.1:$APORT: the server refused the connection: Authorization Violation" "$T/auth-bad.log"
auth_out s3cret >"$T/auth-ok.yaml"
"$BIN" -c "$T/auth-ok.yaml" <"$T/one.jsonl" >"$T/auth-ok.log" 2>&1
check "right password: exit 0" test $? = 0
stop_bg "$AUTH_PID"

# ---- JetStream output across a server restart with batches in flight ----
. tests/integration/nats_lib.sh
start_server || bad "nats-server -js starts"
printf '%s\n' 'input: {stdin: {}}' 'output:' '  max_in_flight: 8' \
    "  nats: {urls: [$URL], subject: ord.x, jetstream: true, stream: ORD, create_stream: true, stream_subjects: [\"ord.>\"], ack_timeout: 2s, reconnect_wait: 100ms}" \
    >"$T/ord.yaml"
# N messages (payload = input position) fed in about 5 s through a FIFO
python3 -c '
import sys
for i in range(int(sys.argv[1])):
    print("{\"payload\": %d, \"meta\": {\"k\": \"%d\"}}" % (i, i % 7))' "$N" >"$T/ord.in"
mkfifo "$T/ord.fifo"
start_bg_stdin "$T/ord.fifo" "$BIN" -c "$T/ord.yaml"
OP=$BG_PID
start_bg python3 -c '
import sys, time
with open(sys.argv[1], "w") as out:
    for i, line in enumerate(open(sys.argv[2])):
        out.write(line)
        if i % 1000 == 999:
            out.flush()
            time.sleep(5.0 / (int(sys.argv[3]) / 1000))' "$T/ord.fifo" "$T/ord.in" "$N"
FEED=$BG_PID
wait_until '[ "$(jsz ORD | cut -d" " -f1)" -ge $((N / 4)) ]' 60
check "restart: output still running at the kill ($(jsz ORD | cut -d' ' -f1) of $N stored)" kill -0 "$OP"
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
forget_bg "$SERVER_PID"
sleep 0.5
start_server || bad "restart: nats-server starts again"
wait "$FEED"
forget_bg "$FEED"
wait "$OP"
check "restart: the output exits 0" test $? = 0
forget_bg "$OP"
stored=$(jsz ORD | cut -d" " -f1)
check "restart: stream ORD holds exactly $N messages (got $stored)" test "$stored" = "$N"
printf '%s\n' 'input:' \
    "  nats: {urls: [$URL], subjects: [\"ord.>\"], jetstream: {stream: ORD, durable: R}}" \
    "output: {file: {path: \"$T/ord.jsonl\"}}" >"$T/ord-read.yaml"
start_bg "$BIN" -c "$T/ord-read.yaml" >"$T/ord-read.log" 2>&1
RP=$BG_PID
wait_until '[ "$(lines "$T/ord.jsonl")" -ge "$N" ]' 60
stop_bg "$RP"
check "restart: every message once, in input order" python3 -c '
import json, sys
got = [json.loads(l)["payload"] for l in open(sys.argv[1])]
n = int(sys.argv[2])
bad = [i for i in range(min(len(got), n)) if got[i] != i]
assert len(got) == n and not bad, "%d lines, first difference at %s" % (len(got), bad[:1])' \
    "$T/ord.jsonl" "$N"
finish
