#!/usr/bin/env bash
# MQTT end to end against a real Debian `mosquitto` on a random free port of
# 127.0.0.1: simulator -> tag_processor -> mqtt output (QoS 1), and a second
# tagproc: mqtt input (QoS 1, persistent session, threads: 2) -> file.
#  1. clean run: every message exactly once, in order per topic;
#  2. broker restarted mid-stream (SIGTERM by PID, same port and persistence
#     directory): both tagprocs reconnect, nothing lost (duplicates counted);
#  3. SIGTERM drain of the subscriber mid-stream: it exits 0; a second
#     subscriber with the same client id gets what the broker still held: the
#     union has every message, so no message whose receipt was acknowledged
#     to the broker is missing from the output;
#  4. kill -9 of the subscriber mid-stream (QoS 1, MQTT 5): a second
#     subscriber on the same session gets the rest; the union has every
#     message (PUBACK only after the output wrote it; duplicates counted);
#  5. urls fail-over: with the first broker of `urls` down both tagprocs use
#     the second; when it stops and the first comes up they move back;
#  6. QoS 2 both ways (publisher and MQTT 5 subscriber): every message
#     exactly once, in order per topic; and MQTT 5 user properties of an
#     incoming message (mosquitto_pub) become its metadata (mqtt_* win);
#  7. TLS (ca_file verification, reconnect over TLS, insecure mode).
set -u
BIN=$(realpath "${1:-build/tagproc}")
BUILD=${2:-build}
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
. tests/lib.sh
cleanup_on_exit

N=100000
RATE=20000 # publisher messages/s in the restart and drain phases (mid-stream events)
case "$BUILD" in *asan*)
    N=20000
    RATE=5000
    ;;
esac
NODES=50
PORT=$(free_port)
URL=tcp://127.0.0.1:$PORT

# max_queued_messages: mosquitto's default (1000 per client) silently drops
# QoS 1 messages for a subscriber that lags behind a fast publisher; the test
# needs the whole stream queued. max_inflight_messages 0: no per-client window.
# set_tcp_nodelay: without it each PUBACK waits for the client's delayed ACK
# (~40 ms per batch, as the output waits for every PUBACK of a batch).
# user: mosquitto started as root switches to user "mosquitto", which could
# not write the persistence file into our temporary directory.
mkdir -p "$T/db"
cat >"$T/mosquitto.conf" <<EOF
user $(id -un)
listener $PORT 127.0.0.1
allow_anonymous true
persistence true
persistence_location $T/db/
max_queued_messages 200000
max_inflight_messages 0
set_tcp_nodelay true
EOF
start_broker() {
    start_bg /usr/sbin/mosquitto -c "$T/mosquitto.conf" >>"$T/broker.log" 2>&1
    BROKER_PID=$BG_PID
    wait_port "$PORT" 30
}
stop_broker() { # SIGTERM: mosquitto saves its persistence file, then exits
    stop_bg "$BROKER_PID" 2>/dev/null
}

# publisher config: phase name, rate
pub_config() {
    cat >"$T/pub-$1.yaml" <<EOF
input:
  simulator: {nodes: $NODES, count: $N, rate: $2, seed: 7, timestamps: fixed}
pipeline:
  threads: 2
  processors:
    - tag_processor:
        defaults: |
          msg.meta.location_path = "enterprise.$1.line1";
          msg.meta.data_contract = "_historian";
          msg.meta.tag_name = msg.meta.opcua_tag_name;
          return msg;
output:
  mqtt:
    url: $URL
    client_id: tp-pub-$1
    qos: ${QOS:-1}
    reconnect_delay: 1
    reconnect_delay_max: 2
EOF
}
# subscriber config: phase name, client id, output file, extra pipeline
# lines; LINGER=D sets input.mqtt.linger (default: the option's default)
sub_config() {
    cat >"$T/sub-$2.yaml" <<EOF
input:
  mqtt:
    url: $URL
    topics: ["umh/v1/enterprise/$1/#"]
    qos: ${QOS:-1}
    client_id: tp-sub-$2
    clean_session: false
    protocol: "5"
    reconnect_delay: 1
    reconnect_delay_max: 2
${LINGER:+    linger: $LINGER}
pipeline:
  threads: 2
${4:-}
output:
  file: {path: $3}
EOF
}
# A processor that spins ~0.2 ms per message: the subscriber's pipeline
# stays full while it drains a backlog. (A generous timeout_ms: on a loaded
# machine a js_timeout drop would be an accounted message missing here.)
SLOW='  processors:
    - nodered_js:
        timeout_ms: 60000
        code: |
          for (let i = 0; i < 20000; i++) {}
          return msg;'
start_sub() { # name -> SUB_PID; waits for the subscription
    : >"$T/sub-$1.log"
    start_bg "$BIN" -c "$T/sub-$1.yaml" >"$T/sub-$1.out" 2>"$T/sub-$1.log"
    SUB_PID=$BG_PID
    wait_until "grep -q 'subscribed to' '$T/sub-$1.log'" 30
}

# check.py FILES(comma-separated) N MODE [QOS]: MODE strict = exactly once and
# in order; dups = nothing missing, duplicates counted, first deliveries in
# order. Every message must say it arrived with QOS (default 1).
cat >"$T/check.py" <<'EOF'
import json, sys
files, n, mode = sys.argv[1].split(","), int(sys.argv[2]), sys.argv[3]
qos = sys.argv[4] if len(sys.argv) > 4 else "1"
seen, last, total, dups, disorder, bad = set(), {}, 0, 0, 0, 0
for f in files:
    for line in open(f):
        o = json.loads(line)
        total += 1
        i = o["payload"]["timestamp_ms"] - 1700000000000
        topic = o["meta"]["mqtt_topic"]
        if o["meta"].get("mqtt_qos") != qos or not 0 <= i < n:
            bad += 1
        if i in seen:
            dups += 1
            continue
        seen.add(i)
        if last.get(topic, -1) > i:
            disorder += 1
        last[topic] = i
missing = n - len(seen)
print(f"lines={total} unique={len(seen)} missing={missing} duplicates={dups} "
      f"out_of_order={disorder} bad={bad} topics={len(last)}")
ok = missing == 0 and disorder == 0 and bad == 0
if mode == "strict":
    ok = ok and dups == 0 and total == n
sys.exit(0 if ok else 1)
EOF
complete() { # FILES: every message present (checked only once there are enough lines)
    local total=0 f
    for f in ${1//,/ }; do total=$((total + $(lines "$f"))); done
    [ "$total" -ge "$N" ] && python3 "$T/check.py" "$1" "$N" dups >/dev/null 2>&1
}

start_broker || {
    bad "mosquitto did not start"
    cat "$T/broker.log"
    finish
}

# ---- 1. clean run (the subscriber without linger: every batch handed on at
# once; the other runs use the default linger) ----
pub_config p1 0
LINGER=0 sub_config p1 s1 "$T/out1.jsonl"
start_sub s1 || bad "subscriber 1 subscribed"
timeout 120 "$BIN" -c "$T/pub-p1.yaml" 2>"$T/pub-p1.log"
check "clean run (input linger 0): publisher exit 0" test $? = 0
wait_until "[ \$(lines '$T/out1.jsonl') -ge $N ]" 60
stop_bg "$SUB_PID"
check "clean run (input linger 0): subscriber drained on SIGTERM, exit 0" test $? = 0
check "clean run (input linger 0): $N messages exactly once, in order per topic" \
    python3 "$T/check.py" "$T/out1.jsonl" "$N" strict
cat "$T/check.out"

# ---- 2. broker restart mid-stream ----
pub_config p2 "$RATE"
sub_config p2 s2 "$T/out2.jsonl"
start_sub s2 || bad "subscriber 2 subscribed"
S2=$SUB_PID
start_bg "$BIN" -c "$T/pub-p2.yaml" 2>"$T/pub-p2.log"
PUB=$BG_PID
wait_until "[ \$(lines '$T/out2.jsonl') -ge $((N / 10)) ]" 60
stop_broker
check "restart: publisher still running when the broker stopped" kill -0 "$PUB"
start_broker || bad "mosquitto restarted"
timeout 120 tail --pid="$PUB" -f /dev/null
wait "$PUB"
check "restart: publisher exit 0" test $? = 0
check "restart: publisher reconnected" \
    test "$(grep -c 'mqtt output: connected' "$T/pub-p2.log")" -ge 2
wait_until "complete '$T/out2.jsonl'" 60
check "restart: subscriber reconnected" \
    test "$(grep -c 'mqtt input: connected' "$T/sub-s2.log")" -ge 2
stop_bg "$S2"
check "restart: subscriber exit 0" test $? = 0
check "restart: nothing lost end to end (duplicates allowed)" \
    python3 "$T/check.py" "$T/out2.jsonl" "$N" dups
cat "$T/check.out"

# ---- 3. and 4.: a subscriber stopped mid-stream, then resumed ----
# interrupt_and_resume PHASE SIGNAL RATE LABEL WHAT: stops the subscriber
# with SIGNAL once a fifth of the stream arrived, starts a second one on the
# same persistent session; the union of both outputs must hold every message.
interrupt_and_resume() {
    local ph=$1 sig=$2 rate=$3 label=$4 what=$5 first
    pub_config "$ph" "$rate"
    sub_config "$ph" "s-$ph" "$T/out-$ph-a.jsonl"
    start_sub "s-$ph" || bad "$label: subscriber subscribed"
    first=$SUB_PID
    start_bg "$BIN" -c "$T/pub-$ph.yaml" 2>"$T/pub-$ph.log"
    PUB=$BG_PID
    wait_until "[ \$(lines '$T/out-$ph-a.jsonl') -ge $((N / 5)) ]" 60
    kill -"$sig" "$first"
    wait "$first" 2>/dev/null
    local st=$?
    [ "$sig" = TERM ] && check "$label: subscriber exit 0 on SIGTERM mid-stream" test "$st" = 0
    A=$(lines "$T/out-$ph-a.jsonl")
    check "$label: stopped mid-stream ($A of $N)" test "$A" -lt "$N"
    # Same client id, same persistent session, new output file.
    sub_config "$ph" "s-$ph" "$T/out-$ph-b.jsonl"
    start_sub "s-$ph" || bad "$label: subscriber restarted"
    timeout 120 tail --pid="$PUB" -f /dev/null
    wait "$PUB"
    check "$label: publisher exit 0" test $? = 0
    wait_until "complete '$T/out-$ph-a.jsonl,$T/out-$ph-b.jsonl'" 60
    stop_bg "$SUB_PID"
    check "$label: second subscriber exit 0" test $? = 0
    check "$label: $what" python3 "$T/check.py" "$T/out-$ph-a.jsonl,$T/out-$ph-b.jsonl" "$N" dups
    cat "$T/check.out"
}
interrupt_and_resume p3 TERM "$RATE" drain \
    "every acknowledged message is in the output (first run + session resume)"
# kill -9 (QoS 1, MQTT 5) with a full pipeline: the whole stream waits in
# the broker for the session, then a deliberately slow subscriber drains it
# and is killed mid-way. A PUBACK goes out only after the output wrote the
# message, so the second subscriber gets everything the first had not written
# (an input that acknowledged on receipt lost what its pipeline held).
KN=$((N / 5))
N_FULL=$N
N=$KN
pub_config p5 0
sub_config p5 s-p5 "$T/out-p5-a.jsonl" "$SLOW"
start_sub s-p5 || bad "kill -9: subscriber subscribed"
stop_bg "$SUB_PID"
timeout 120 "$BIN" -c "$T/pub-p5.yaml" 2>"$T/pub-p5.log"
check "kill -9: $KN messages queued for the session" test $? = 0
# (the queued messages may come before the SUBACK: no wait for "subscribed")
start_bg "$BIN" -c "$T/sub-s-p5.yaml" 2>"$T/sub-s-p5-slow.log"
SUB_PID=$BG_PID
wait_until "[ \$(lines '$T/out-p5-a.jsonl') -ge $((KN / 4)) ]" 120
kill -9 "$SUB_PID"
wait "$SUB_PID" 2>/dev/null
A=$(lines "$T/out-p5-a.jsonl")
check "kill -9: killed mid-stream ($A of $KN)" test "$A" -lt "$KN"
sub_config p5 s-p5 "$T/out-p5-b.jsonl"
start_sub s-p5 || bad "kill -9: second subscriber subscribed"
wait_until "complete '$T/out-p5-a.jsonl,$T/out-p5-b.jsonl'" 120
stop_bg "$SUB_PID"
check "kill -9: second subscriber exit 0" test $? = 0
check "kill -9: nothing lost (duplicates counted)" \
    python3 "$T/check.py" "$T/out-p5-a.jsonl,$T/out-p5-b.jsonl" "$KN" dups
cat "$T/check.out"
N=$N_FULL

# ---- 5. urls fail-over: broker list tried in order ----
PORT_B=$(free_port)
sed -e "s/^listener $PORT /listener $PORT_B /" -e "s/^persistence true/persistence false/" \
    "$T/mosquitto.conf" >"$T/mosquitto-b.conf"
start_bg /usr/sbin/mosquitto -c "$T/mosquitto-b.conf" >>"$T/broker-b.log" 2>&1
BROKER_B=$BG_PID
PORT_A=$PORT
stop_broker # the first broker of the list is down
N_FULL=$N
N=2000
URLS="[tcp://127.0.0.1:$PORT_A, tcp://127.0.0.1:$PORT_B]"
failover_configs() { # phase
    pub_config "$1" 0
    sub_config "$1" "s-$1" "$T/out-$1.jsonl"
    sed -i "s|^    url: .*|    urls: $URLS|" "$T/pub-$1.yaml" "$T/sub-s-$1.yaml"
}
failover_configs p6
SUB_LOG=$T/sub-s-p6.log
wait_port "$PORT_B" 30
start_sub s-p6 || bad "failover: subscriber subscribed"
timeout 60 "$BIN" -c "$T/pub-p6.yaml" 2>"$T/pub-p6.log"
check "failover: publisher exit 0" test $? = 0
check "failover: both use the second url while the first is down" \
    grep -q "connected to tcp://127.0.0.1:$PORT_B" "$T/pub-p6.log" "$SUB_LOG"
wait_until "[ \$(lines '$T/out-p6.jsonl') -ge $N ]" 30
check "failover: $N messages through the second broker, exactly once" \
    python3 "$T/check.py" "$T/out-p6.jsonl" "$N" strict
start_broker || bad "failover: first broker started"
stop_bg "$BROKER_B" 2>/dev/null
check "failover: subscriber moved back to the first url" \
    wait_until "grep -q 'connected to tcp://127.0.0.1:$PORT_A' '$SUB_LOG'" 30
wait_until "[ \$(grep -c 'subscribed to' '$SUB_LOG') -ge 2 ]" 30
stop_bg "$SUB_PID"
check "failover: subscriber exit 0" test $? = 0
N=$N_FULL
PORT=$PORT_A

# ---- 6. QoS 2 end to end, then MQTT 5 user properties -> metadata ----
if ! command -v mosquitto_pub >/dev/null; then
    echo "installing Debian mosquitto-clients"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends mosquitto-clients >/dev/null
fi
N_FULL=$N
N=$((N / 5))
QOS=2
pub_config p7 0
sub_config p7 s7 "$T/out7.jsonl"
start_sub s7 || bad "qos 2: subscriber subscribed"
timeout 120 "$BIN" -c "$T/pub-p7.yaml" 2>"$T/pub-p7.log"
check "qos 2: publisher exit 0" test $? = 0
wait_until "[ \$(lines '$T/out7.jsonl') -ge $N ]" 60
check "qos 2: $N messages exactly once, in order per topic" \
    python3 "$T/check.py" "$T/out7.jsonl" "$N" strict 2
mosquitto_pub -p "$PORT" -h 127.0.0.1 -V mqttv5 -q 2 -t umh/v1/enterprise/p7/props -m '{"v":1}' \
    -D publish user-property unit degC -D publish user-property line "L 1" \
    -D publish user-property unit degF -D publish user-property mqtt_topic spoofed
wait_until "[ \$(lines '$T/out7.jsonl') -gt $N ]" 30
stop_bg "$SUB_PID"
check "qos 2: subscriber exit 0" test $? = 0
check "user properties: metadata (last value of a repeated name; mqtt_* not overridden)" \
    python3 -c "import json,sys; m=json.loads(open('$T/out7.jsonl').readlines()[-1])['meta']; print(m); sys.exit(0 if m['unit'] == 'degF' and m['line'] == 'L 1' and m['mqtt_topic'] == 'umh/v1/enterprise/p7/props' and m['mqtt_qos'] == '2' else 1)"
QOS=1
N=$N_FULL

# ---- 7. TLS: a CA-signed broker certificate; the subscriber verifies it
# (ca_file) and reconnects over TLS after a broker restart; the publisher
# connects with `insecure: true` ----
stop_broker
if openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" -days 2 \
    -subj "/CN=tagproc test CA" >/dev/null 2>&1 &&
    openssl req -newkey rsa:2048 -nodes -keyout "$T/server.key" -out "$T/server.csr" \
        -subj "/CN=127.0.0.1" >/dev/null 2>&1 &&
    printf 'subjectAltName=IP:127.0.0.1\n' >"$T/ext.cnf" &&
    openssl x509 -req -in "$T/server.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
        -out "$T/server.pem" -days 2 -extfile "$T/ext.cnf" >/dev/null 2>&1; then
    printf 'cafile %s\ncertfile %s\nkeyfile %s\n' "$T/ca.pem" "$T/server.pem" "$T/server.key" \
        >>"$T/mosquitto.conf"
    start_broker || bad "tls: broker started"
    N_CLEAR=$N
    N=2000
    URL=ssl://127.0.0.1:$PORT
    sub_config p4 s4 "$T/out4.jsonl"
    sed -i "/reconnect_delay_max/a\\    tls: {ca_file: $T/ca.pem}" "$T/sub-s4.yaml"
    start_sub s4 || bad "tls: subscriber subscribed"
    stop_broker
    start_broker || bad "tls: broker restarted"
    check "tls: subscriber reconnected over TLS" \
        wait_until "[ \$(grep -c 'subscribed to' '$T/sub-s4.log') -ge 2 ]" 30
    URL=mqtts://127.0.0.1:$PORT
    pub_config p4 0
    sed -i "/reconnect_delay_max/a\\    tls: {insecure: true}" "$T/pub-p4.yaml"
    timeout 60 "$BIN" -c "$T/pub-p4.yaml" 2>"$T/pub-p4.log"
    check "tls: publisher (insecure) exit 0" test $? = 0
    wait_until "[ \$(lines '$T/out4.jsonl') -ge $N ]" 30
    stop_bg "$SUB_PID"
    check "tls: subscriber exit 0" test $? = 0
    check "tls: $N messages exactly once, in order per topic" \
        python3 "$T/check.py" "$T/out4.jsonl" "$N" strict
    cat "$T/check.out"
    N=$N_CLEAR
else
    bad "tls: openssl could not create the test certificates"
fi

finish
