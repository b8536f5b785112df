#!/usr/bin/env bash
# The rules' cost per message against the width of the metadata and a JSON
# envelope payload, on the file path (no broker): JSONL file -> rules ->
# JSONL file, tagproc CPU µs/msg (user + sys from /usr/bin/time), medians of
# RUNS runs. Cases: the seed envelopes (6 metadata keys) and the same with
# the 5 kafka_* keys of the Kafka input in front (11 keys), each through the
# seed rules (bench/e2e_config.py) and without processor; and the MQTT
# bench's messages (the envelope as payload, mqtt_* metadata) through its
# rules (bench/seed_envelope_rules.yaml); and a Kafka-like wide set (13
# keys: the 11 and two more headers, content_type and source). With
# BEFORE=path the same cases run with that binary too, interleaved run by run
# (before/after in one run). INSTR=1 adds instructions per message under
# valgrind --tool=callgrind (independent of the machine's load) for the seed
# rules on the first INSTR_N (20000) messages of the 6-, 11- and 13-key sets,
# through `tagproc bench --workload seed --input` (the same rules, drop
# output): the whole process and the rules worker (tp_js_worker_run,
# inclusive: JS in and out, the rules, the UNS output).
# Environment: N (messages, default 200000), RUNS (3), BIN (build/tagproc).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${BIN:-build/tagproc}")
BEFORE=${BEFORE:+$(realpath "$BEFORE")}
N=${N:-200000}
RUNS=${RUNS:-3}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

printf 'input:\n  simulator: {nodes: 42, count: %s, timestamps: fixed, metadata: short}\noutput:\n  file: {path: "%s"}\n' \
    "$N" "$T/seed.jsonl" >"$T/gen.yaml"
"$BIN" -c "$T/gen.yaml" 2>/dev/null
python3 - "$T" "$N" <<'PY'
import sys
t, n = sys.argv[1], int(sys.argv[2])
with open(t + "/seed.jsonl") as f, open(t + "/kafka.jsonl", "w") as o:
    for i, line in enumerate(f):  # the Kafka input's metadata, then the envelope's
        head, meta = line.rstrip("\n").split(',"meta":{', 1)
        o.write('%s,"meta":{"kafka_key":"ns=1;i=%d","kafka_topic":"umh.input",'
                '"kafka_partition":"%d","kafka_offset":"%d","kafka_timestamp_ms":"%d",%s\n'
                % (head, 2200 + i % 42, i % 4, i // 4, 1700000000000 + i, meta))
with open(t + "/kafka.jsonl") as f, open(t + "/wide.jsonl", "w") as o:
    for line in f:  # two more headers after the envelope's keys
        o.write(line.rstrip("\n")[:-2] +
                ',"content_type":"application/json","source":"plc-gateway-1"}}\n')
with open(t + "/mqtt.jsonl", "w") as o:  # as build/mqtt_load publishes, as the input reads it
    for s in range(n):
        node, c = s % 42, 2000 + s % 1000
        env = ('{"payload":%d.%02d,"meta":{"opcua_node_id":"ns=1;i=%d","opcua_tag_name":"Tag%d",'
               '"opcua_tag_group":"Simulation","opcua_tag_type":"number","timestamp_ms":"%d"}}'
               % (c // 100, c % 100, 2200 + node, node, 1700000000000 + s))
        o.write('{"payload":%s,"meta":{"mqtt_topic":"raw/%d","mqtt_qos":"0","mqtt_retain":"false"}}\n'
                % (env, node))
PY
for input in seed kafka wide; do
    python3 bench/e2e_config.py "$T/$input.jsonl" "$T/out.jsonl" 1 >"$T/$input-seed.yaml"
    printf 'input:\n  file: {path: "%s"}\npipeline: {threads: 1}\noutput:\n  file: {path: "%s", mode: truncate}\n' \
        "$T/$input.jsonl" "$T/out.jsonl" >"$T/$input-none.yaml"
done
{
    printf 'input:\n  file: {path: "%s"}\npipeline:\n  threads: 1\n' "$T/mqtt.jsonl"
    grep -v '^#' bench/seed_envelope_rules.yaml
    printf 'output:\n  file: {path: "%s", mode: truncate}\n' "$T/out.jsonl"
} >"$T/mqtt-envelope.yaml"

cpu() { # BIN CONFIG: CPU µs per message
    /usr/bin/time -f '%U %S' -o "$T/time" "$1" -c "$2" 2>/dev/null
    python3 -c "import sys; u, s = open(sys.argv[1]).read().split()[-2:]; \
print(f'{(float(u) + float(s)) * 1e6 / int(sys.argv[2]):.2f}')" "$T/time" "$N"
}
cases="seed-seed seed-none kafka-seed kafka-none wide-seed wide-none mqtt-envelope"
bins="$BIN"
[ -n "$BEFORE" ] && bins="$BEFORE $BIN"
: >"$T/res"
for _ in $(seq 1 "$RUNS"); do
    for c in $cases; do
        for b in $bins; do
            echo "$c $b $(cpu "$b" "$T/$c.yaml")" >>"$T/res"
        done
    done
done
python3 - "$T/res" "$BIN" "${BEFORE:-}" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
after, before = sys.argv[2], sys.argv[3]
names = {"seed-seed": "seed envelopes (6 keys), seed rules",
         "seed-none": "seed envelopes (6 keys), no processor",
         "kafka-seed": "+ 5 kafka_* keys (11), seed rules",
         "kafka-none": "+ 5 kafka_* keys (11), no processor",
         "wide-seed": "+ 2 more headers (13), seed rules",
         "wide-none": "+ 2 more headers (13), no processor",
         "mqtt-envelope": "MQTT bench messages, envelope parsed by the rules"}
def med(c, b):
    v = [float(r[2]) for r in rows if r[0] == c and r[1] == b]
    return "%.2f (%s)" % (statistics.median(v), ", ".join("%.2f" % x for x in v))
print("| case | " + ("before µs/msg | " if before else "") + "µs/msg |")
print("|---|" + ("---|" if before else "") + "---|")
for c in names:
    print("| %s | " % names[c] + (med(c, before) + " | " if before else "") + med(c, after) + " |")
PY

[ "${INSTR:-0}" = 1 ] || exit 0
INSTR_N=${INSTR_N:-20000}
instr() { # BIN FILE: "process worker" instructions per message
    head -n "$INSTR_N" "$2" >"$T/cg.jsonl"
    valgrind --tool=callgrind --callgrind-out-file="$T/cg.out" \
        "$1" bench --workload seed --input "$T/cg.jsonl" >/dev/null 2>&1
    callgrind_annotate --inclusive=yes "$T/cg.out" 2>/dev/null | awk -v n="$INSTR_N" '
        { gsub(",", "", $1) }
        /PROGRAM TOTALS/ { total = $1 }
        /:tp_js_worker_run \[/ { worker = $1 }
        END { printf "%.0f %.0f\n", total / n, worker / n }'
}
echo
echo "instructions per message (callgrind, $INSTR_N messages, seed rules): process / rules worker"
echo "| metadata in | ${BEFORE:+before | }after |"
echo "|---|${BEFORE:+---|}---|"
for input in seed kafka wide; do
    row="| $input ($(head -c 2000 "$T/$input.jsonl" | head -n 1 | python3 -c \
        'import json, sys; print(len(json.loads(sys.stdin.read())["meta"]))') keys) |"
    for b in $bins; do
        read -r total worker < <(instr "$b" "$T/$input.jsonl")
        row="$row $total / $worker |"
    done
    echo "$row"
done
