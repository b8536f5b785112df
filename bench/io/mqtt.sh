#!/usr/bin/env bash
# `make bench-io`, MQTT part: a stock mosquitto (defaults but for the
# loopback listener) on a free port of 127.0.0.1; build/mqtt_load drives it
# closed loop (window 1000) with the seed workload's envelopes. Per QoS
# (0, 1): the broker alone (publish to bas/#, subscribe bas/#), then tagproc
# mqtt -> passthrough -> mqtt and mqtt -> seed rules -> mqtt. Reports msg/s,
# the ratio to the broker-only rate of the same run, tagproc CPU µs/msg
# (/proc utime+stime) and, from a second run under `strace -f -c`, system
# calls per message. Environment: N (default 200000), WINDOW (1000),
# QOS ("0 1"), RULES ("passthrough seed"): a subset of the cases.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$(realpath "${BIN:-build/tagproc}") # BIN=...: another build, for a same-run comparison
LOAD=$(realpath build/mqtt_load)
N=${N:-200000}
WINDOW=${WINDOW:-1000}
T=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
. tests/lib.sh
command -v strace >/dev/null || { echo "bench-io: needs strace (apt-get install strace)" >&2; exit 1; }
PORT=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$PORT" >"$T/mosquitto.conf"
/usr/sbin/mosquitto -c "$T/mosquitto.conf" >"$T/broker.log" 2>&1 &
PIDS+=($!)
wait_until "(: >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null" 30

config() { # name qos rules(passthrough|seed)
    local out_topic="" rules=""
    if [ "$3" = passthrough ]; then
        out_topic='    topic: "pt/{{meta.mqtt_topic}}"'
    else
        rules=$(grep -v '^#' bench/seed_envelope_rules.yaml)
    fi
    cat >"$T/$1.yaml" <<EOF
input:
  mqtt: {url: "tcp://127.0.0.1:$PORT", topics: ["raw/#"], qos: $2, clean_session: true}
pipeline:
  threads: 0
$rules
output:
  mqtt:
    url: tcp://127.0.0.1:$PORT
    qos: $2
$out_topic
EOF
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run NAME QOS RULES FILTER: prints "msg/s cpu_us_per_msg syscalls_per_msg"
run() {
    local name=$1 qos=$2 filter=$4 tp c0 c1 rate sys
    config "$name" "$qos" "$3"
    : >"$T/$name.log"
    : >"$T/$name-s.log"
    "$BIN" -c "$T/$name.yaml" 2>"$T/$name.log" &
    tp=$!
    wait_until "grep -q 'subscribed to' '$T/$name.log'" 30
    c0=$(cpu_ticks "$tp")
    rate=$("$LOAD" "$PORT" "$qos" "$N" "$WINDOW" raw "$filter" | python3 -c \
        'import json,sys; print(json.load(sys.stdin)["msg_per_s"])')
    c1=$(cpu_ticks "$tp")
    kill -TERM "$tp"
    wait "$tp" || true
    # The same once more under strace for the system call count.
    strace -f -c -o "$T/$name.strace" "$BIN" -c "$T/$name.yaml" 2>"$T/$name-s.log" &
    tp=$!
    wait_until "grep -q 'subscribed to' '$T/$name-s.log'" 30
    "$LOAD" "$PORT" "$qos" "$((N / 4))" "$WINDOW" raw "$filter" >/dev/null
    kill -TERM "$(pgrep -P "$tp")"
    wait "$tp" || true
    sys=$(awk '$NF != "total" && $4 ~ /^[0-9]+$/ && $NF !~ /^(rt_sig|futex)/ {s += $4}
               END {print s}' "$T/$name.strace")
    futex=$(awk '$NF == "futex" {print $4}' "$T/$name.strace")
    python3 -c "import sys; r,c,n,s,f=map(float,sys.argv[1:]); \
print(f'{r:.0f} {c*1e6/100/n:.2f} {s/(n/4):.3f} {f/(n/4):.3f}')" \
        "$rate" "$((c1 - c0))" "$N" "$sys" "${futex:-0}"
}

echo "| path | QoS | msg/s | x broker-only | tagproc CPU µs/msg | syscalls/msg (+ futex) |"
echo "|---|---|---|---|---|---|"
for qos in ${QOS:-0 1}; do
    base=$("$LOAD" "$PORT" "$qos" "$N" "$WINDOW" bas 'bas/#' | python3 -c \
        'import json,sys; print(json.load(sys.stdin)["msg_per_s"])')
    echo "| broker only | $qos | $base | 1.00 | | |"
    for rules in ${RULES:-passthrough seed}; do
        filter='umh/#'
        [ "$rules" = passthrough ] && filter='pt/#'
        read -r rate cpu sys futex < <(run "$rules-q$qos" "$qos" "$rules" "$filter")
        ratio=$(python3 -c "print(f'{$rate / $base:.2f}')")
        echo "| mqtt -> $rules -> mqtt | $qos | $rate | $ratio | $cpu | $sys (+ $futex) |"
    done
done
