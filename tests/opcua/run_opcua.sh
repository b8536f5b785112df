#!/usr/bin/env bash
# The `opcua` input against a real OPC UA server: node-opcua (pinned, installed
# by scripts/opcua-test-server.sh into third_party/node-opcua, reused by both
# builds) serving tests/opcua/server.js on a free port of 127.0.0.1.
#  1. browse + poll: the benthos-umh FolderNode/SubFolder tag_name/tag_group
#     table, every verified data type (scalar and 1-D array) with its JSON,
#     metadata; properties, null-DataType variables skipped; bad status
#     delivered; a 2-D array reported as unsupported;
#  2. poll and subscribe deliver the counter's changes in order;
#  3. username/password accepted (with useHeartbeat) and rejected;
#     SignAndEncrypt refused by a None-only server (tests/opcua/
#     run_opcua_security.sh tests security);
#  4. server killed and restarted mid-stream: autoReconnect resumes, without
#     it tagproc exits 1 with the reason;
#  5. hostile servers (tests/opcua/fake_server.py) fail cleanly with exit 1;
#  6. the seed tag_processor rules on top produce the UNS topics
#     (examples/opcua-uns.yaml).
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
. tests/lib.sh
cleanup_on_exit

MODULES=$(bash scripts/opcua-test-server.sh --install) || {
    echo "FAIL cannot install node-opcua"
    exit 1
}
PORT=$(free_port)
EP=opc.tcp://127.0.0.1:$PORT

# The server (SERVER_PID) on PORT, ready when it printed READY.
start_server() {
    start_bg env PORT="$PORT" COUNTER_MS=250 NODE_PATH="$MODULES" node tests/opcua/server.js \
        >"$T/server.log" 2>&1
    SERVER_PID=$BG_PID
    wait_line "$T/server.log" READY 120
}
start_server || {
    echo "FAIL server did not start"
    exit 1
}

# run NAME LINES CONFIG: runs tagproc until it has written LINES messages (at
# most 90 s), then SIGTERM; the exit code goes to $T/NAME.rc, output to
# NAME.out, log to NAME.err.
run() {
    run_until "$T/$1.out" "$2" 90 "$BIN" -c "$3" 2>"$T/$1.err"
    echo $? >"$T/$1.rc"
}

config() { # file, extra input options (YAML flow map entries)
    cat >"$1" <<EOF
input:
  opcua: {endpoint: "$EP", $2}
output:
  stdout: {}
EOF
}

# ---- 1. browse, types, metadata (poll) ----
config "$T/types.yaml" 'nodeIDs: ["ns=2;s=FolderNode", "ns=2;s=DataTypes", "ns=2;s=Special"], pollRate: 500'
run types 200 "$T/types.yaml"
check "poll run exits 0 on SIGTERM" test "$(cat "$T/types.rc")" = 0
check "browse + types + metadata as benthos-umh" python3 tests/opcua/check_output.py types "$T/types.out" "$T/types.err"

# ---- 2. order per node ----
config "$T/poll.yaml" 'nodeIDs: ["ns=2;s=PollCounter"], pollRate: 20'
run poll 250 "$T/poll.yaml"
check "poll: counter values in order, no value missed (PollCounter steps once read)" \
    python3 tests/opcua/check_output.py counter-poll "$T/poll.out" "$T/poll.err"
config "$T/sub.yaml" 'nodeIDs: ["ns=2;s=Counter", "ns=2;s=FolderNode"], subscribeEnabled: true'
run sub 30 "$T/sub.yaml"
check "subscribe: every change once, in order" \
    python3 tests/opcua/check_output.py counter-sub "$T/sub.out" "$T/sub.err"

# ---- 3. identity and security options ----
config "$T/user.yaml" 'nodeIDs: ["ns=2;s=Counter"], subscribeEnabled: true, username: user1, password: pass1, useHeartbeat: true'
run user 12 "$T/user.yaml"
check_sh "username/password accepted" "[ \$(cat $T/user.rc) = 0 ] && [ \$(wc -l <$T/user.out) -ge 12 ]"
check_sh "useHeartbeat: the server's CurrentTime arrives, marked" \
    "grep -c '\"opcua_tag_group\":\"heartbeat\",\"opcua_tag_name\":\"CurrentTime\",.*\"opcua_heartbeat_message\":\"true\"' $T/user.out"
config "$T/baduser.yaml" 'nodeIDs: ["ns=2;s=Counter"], username: user1, password: nope'
timeout 90 "$BIN" -c "$T/baduser.yaml" >"$T/baduser.out" 2>"$T/baduser.err"
echo $? >"$T/baduser.rc"
check_sh "wrong password: exit 1, reason logged, nothing delivered" \
    "[ \$(cat $T/baduser.rc) = 1 ] && grep -q \"login as 'user1' rejected (BadUserAccessDenied)\" $T/baduser.err && [ ! -s $T/baduser.out ]"
config "$T/sec.yaml" 'nodeIDs: ["ns=2;s=Counter"], securityMode: SignAndEncrypt, securityPolicy: Basic256Sha256'
"$BIN" -c "$T/sec.yaml" >/dev/null 2>"$T/sec.err"
echo $? >"$T/sec.rc"
check_sh "SignAndEncrypt asked of a None-only server: config error naming what it offers" \
    "[ \$(cat $T/sec.rc) = 2 ] && grep -q 'offers no endpoint with securityMode SignAndEncrypt, securityPolicy Basic256Sha256 and anonymous login; it offers: None/None' $T/sec.err"
config "$T/badid.yaml" 'nodeIDs: ["ns=2;x=Counter"]'
timeout 90 "$BIN" -c "$T/badid.yaml" >/dev/null 2>"$T/badid.err"
check_sh "a malformed NodeId is named" "grep -q \"'ns=2;x=Counter' is not a NodeId\" $T/badid.err"

# ---- 4. server killed and restarted mid-stream ----
config "$T/re.yaml" 'nodeIDs: ["ns=2;s=Counter"], subscribeEnabled: true, autoReconnect: true, reconnectIntervalInSeconds: 1'
RE_HTTP=$(free_port)
echo "http: {address: \"127.0.0.1:$RE_HTTP\"}" >>"$T/re.yaml"
start_bg "$BIN" -c "$T/re.yaml" >"$T/re.out" 2>"$T/re.err"
RE_PID=$BG_PID
config "$T/nore.yaml" 'nodeIDs: ["ns=2;s=Counter"], subscribeEnabled: true'
start_bg "$BIN" -c "$T/nore.yaml" >"$T/nore.out" 2>"$T/nore.err"
NORE_PID=$BG_PID
wait_until "[ \$(lines $T/re.out) -ge 10 ] && [ \$(lines $T/nore.out) -ge 10 ]" 90
before=$(lines "$T/re.out")
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
forget_bg "$SERVER_PID"
wait_until "! kill -0 $NORE_PID 2>/dev/null" 90 # it ends by itself (else SIGTERM: exit 0)
stop_bg "$NORE_PID"
echo $? >"$T/nore.rc"
check_sh "without autoReconnect: exit 1 with the reason" \
    "[ \$(cat $T/nore.rc) = 1 ] && grep -q 'opcua: server closed the connection' $T/nore.err"
# the restart comes once tagproc has seen the server gone and plans a retry
wait_line "$T/re.err" 'reconnecting in 1 s' 60
start_server
wait_until "[ \$(lines $T/re.out) -ge $((before + 10)) ]" 90
curl -s -m 30 "http://127.0.0.1:$RE_HTTP/metrics" >"$T/re.metrics"
stop_bg "$RE_PID"
echo $? >"$T/re.rc"
check_sh "with autoReconnect: reconnects, resumes, exits 0" \
    "[ \$(cat $T/re.rc) = 0 ] && grep -q 'reconnecting in 1 s' $T/re.err && [ \$(grep -c 'opcua: connected' $T/re.err) -ge 2 ]"
check_sh "/metrics counts the reconnect (tagproc_opcua_reconnects_total)" \
    "grep '^tagproc_opcua' $T/re.metrics; grep -q '^tagproc_opcua_reconnects_total 1$' $T/re.metrics && grep -q '^tagproc_opcua_notifications_missed_total 0$' $T/re.metrics"
check "after the restart the new counter arrives in order" \
    python3 tests/opcua/check_output.py counter-restart "$T/re.out" "$T/re.err"

# ---- 5. hostile servers ----
MODES="junk huge ack_junk opn_bad session_junk chunks"
declare -A FPORT
args=()
for mode in $MODES; do
    FPORT[$mode]=$(free_port)
    args+=("$mode:${FPORT[$mode]}")
done
start_bg python3 tests/opcua/fake_server.py "${args[@]}" >"$T/fake.log" 2>&1
wait_line "$T/fake.log" READY 60
for mode in $MODES; do
    cat >"$T/fake.yaml" <<EOF
input:
  opcua: {endpoint: "opc.tcp://127.0.0.1:${FPORT[$mode]}", nodeIDs: ["ns=2;s=X"]}
output:
  stdout: {}
EOF
    timeout 60 "$BIN" -c "$T/fake.yaml" >"$T/fake.out" 2>"$T/fake.err"
    echo $? >"$T/fake.rc"
    check_sh "hostile server ($mode): exit 1 with an opcua error, nothing delivered" \
        "head -1 $T/fake.err; [ \$(cat $T/fake.rc) = 1 ] && grep -a -q 'error input.opcua: read failed: opcua: ' $T/fake.err && [ ! -s $T/fake.out ]"
done

# ---- 6. seed tag_processor rules on top: UNS topics ----
sed "s#opc.tcp://127.0.0.1:4840#$EP#" examples/opcua-uns.yaml >"$T/uns.yaml"
run uns 30 "$T/uns.yaml"
check "tag_processor on the opcua input gives the UNS topics" \
    python3 tests/opcua/check_output.py uns "$T/uns.out" "$T/uns.err"

finish
