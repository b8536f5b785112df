#!/usr/bin/env bash
# UMH-style configs (tests/cli/umh/) run unchanged (issue 12): each lints
# clean and runs, giving results checked here — Node-RED function code with
# flow context and node.warn, the downsampler example of the benthos-umh
# docs, a protocol converter's rules on the simulator's OPC UA metadata with
# Benthos logger/http settings and ${VAR:default}, a stateful rule on 4
# threads, Benthos-only sections, and a protocol converter writing to the
# UNS plus a data flow reading it back (against tests/tools/kafka_mock).
set -u
BIN=$(realpath "${1:-build/tagproc}")
BUILD=$(realpath "${2:-build}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
. tests/lib.sh
cleanup_on_exit
D=tests/cli/umh

for c in "$D"/*.yaml; do
    check_sh "lint $(basename "$c"): no errors" "'$BIN' lint '$c' >'$T/lint' 2>&1"
done

# nodered-counter: per-machine counts exact on 2 threads, node.warn logged
python3 -c '
for i in range(3000):
    print("{\"payload\":{\"temperature\":%d},\"meta\":{\"machine\":\"m%d\"}}" % (70 + i % 13, i % 5))
' >"$T/machines"
"$BIN" -c "$D/nodered-counter.yaml" <"$T/machines" >"$T/counter" 2>"$T/counter.err"
check_sh "nodered-counter: 3000 results, counts per machine exact" "python3 -c '
import collections, json, sys
n = collections.Counter()
for line in open(sys.argv[1]):
    p = json.loads(line)[\"payload\"]
    n[p[\"machine\"]] += 1
    assert p[\"count\"] == n[p[\"machine\"]], line
assert sum(n.values()) == 3000
' '$T/counter'"
check_sh "nodered-counter: node.warn with the metadata" \
    "grep -q 'warn  \[processor=pipeline.processors\[0\].nodered_js stage=code rule=code\] temperature high: 81; meta={\"machine\":\"m' '$T/counter.err'"

# downsampler: the docs' parameters on hand-checked points
cat >"$T/points" <<'JSONL'
{"payload":{"timestamp_ms":1000,"value":20.0},"meta":{"umh_topic":"umh.v1.e.s._historian.temperature"}}
{"payload":{"timestamp_ms":2000,"value":20.05},"meta":{"umh_topic":"umh.v1.e.s._historian.temperature"}}
{"payload":{"timestamp_ms":3000,"value":20.15},"meta":{"umh_topic":"umh.v1.e.s._historian.temperature"}}
{"payload":{"timestamp_ms":1000,"value":5.0},"meta":{"umh_topic":"umh.v1.e.s._historian.pressure"}}
{"payload":{"timestamp_ms":2000,"value":5.15},"meta":{"umh_topic":"umh.v1.e.s._historian.pressure"}}
{"payload":{"timestamp_ms":3000,"value":5.25},"meta":{"umh_topic":"umh.v1.e.s._historian.pressure"}}
{"payload":{"timestamp_ms":5000,"value":true},"meta":{"umh_topic":"umh.v1.e.s._historian.alarm"}}
{"payload":{"timestamp_ms":4000,"value":false},"meta":{"umh_topic":"umh.v1.e.s._historian.alarm"}}
{"payload":"not a time series","meta":{"umh_topic":"umh.v1.e.s._historian.pressure"}}
JSONL
"$BIN" -c "$D/downsampler.yaml" <"$T/points" >"$T/ds" 2>"$T/ds.err"
check_sh "downsampler: temperature 20.0, 20.15 kept (0.1), pressure 5.0, 5.25 (0.2)" \
    "grep -o '\"value\":[0-9][0-9.]*' '$T/ds' | tr '\n' ' ' | grep -qx '\"value\":20.0 \"value\":20.15 \"value\":5.0 \"value\":5.25 '"
check_sh "downsampler: late alarm dropped, other messages pass" \
    "grep -q '\"value\":true' '$T/ds' && ! grep -q '\"value\":false' '$T/ds' && grep -q 'not a time series' '$T/ds' && grep -q 'dropped=3 (filtered=3)' '$T/ds.err'"

# simulator-historian: env defaults, OPC UA metadata, logfmt with the static field
"$BIN" -c "$D/simulator-historian.yaml" >"$T/sim" 2>"$T/sim.err"
check_sh "simulator-historian: location from opcua_tag_path, bools under status" \
    "grep -q '\"topic\":\"umh.v1.enterprise.site.line1.machine1._historian.Temperature\"' '$T/sim' && grep -q '\"topic\":\"umh.v1.enterprise.site.line1.machine1._historian.status.Running\"' '$T/sim'"
check_sh "simulator-historian: downsampled (fewer than 2400), logfmt with @service" \
    "n=\$(wc -l <'$T/sim'); [ \$n -gt 24 ] && [ \$n -lt 2400 ] && grep -q '^time=[^ ]* level=info msg=\"tagproc .* starting: .*\" @service=protocol-converter$' '$T/sim.err'"
SIM_COUNT=48 SERVICE_NAME=pc2 "$BIN" -c "$D/simulator-historian.yaml" >"$T/sim2" 2>"$T/sim2.err"
check_sh "simulator-historian: environment overrides (count 48, service)" \
    "[ \$(wc -l <'$T/sim2') -le 48 ] && grep -q 'received=48 ' '$T/sim2.err' && grep -q '@service=pc2' '$T/sim2.err'"

# stateful-delta: threads 4 equals threads 1 (the config's own result vs a one-thread run)
python3 -c '
import random
r = random.Random(3)
for i in range(20000):
    k = r.randrange(8)
    print("{\"payload\":%d,\"meta\":{\"opcua_node_id\":\"ns=1;i=%d\",\"opcua_tag_name\":\"t%d\",\"timestamp_ms\":\"%d\"}}" % (r.randrange(100), k, k, 1700000000000 + i))
' >"$T/readings"
"$BIN" -c "$D/stateful-delta.yaml" <"$T/readings" >"$T/delta4" 2>/dev/null
"$BIN" -c "$D/stateful-delta.yaml" --set pipeline.threads=1 <"$T/readings" >"$T/delta1" 2>/dev/null
check_sh "stateful-delta: 20000 results, threads 4 = threads 1" \
    "[ \$(wc -l <'$T/delta4') = 20000 ] && cmp '$T/delta1' '$T/delta4' && grep -vq '\"value\":0}' '$T/delta4'"

# benthos-sections: one warning naming the ignored sections; env file paths
printf '{"payload":1}\n{"payload":2,"meta":{"line":"l2"}}\n' >"$T/in.jsonl"
INPUT_FILE="$T/in.jsonl" OUTPUT_FILE="$T/out.jsonl" "$BIN" -c "$D/benthos-sections.yaml" 2>"$T/bs.err"
check_sh "benthos-sections: ignored sections named once" \
    "[ \$(grep -c 'Benthos keys without meaning in tagproc, accepted and ignored: metrics, shutdown_timeout' '$T/bs.err') = 1 ]"
check_sh "benthos-sections: output written where the environment says" \
    "grep -qx '{\"payload\":1,\"meta\":{\"line\":\"line1\"}}' '$T/out.jsonl' && grep -qx '{\"payload\":2,\"meta\":{\"line\":\"l2\"}}' '$T/out.jsonl'"
# protocol-converter-uns -> umh.messages -> uns-dataflow -> umh.messages
start_bg "$BUILD/kafka_mock" serve 1 umh.messages:1 </dev/null >"$T/boot" 2>"$T/mock.err"
wait_until "[ -s '$T/boot' ]" 60 || cat "$T/mock.err"
export UMH_BROKER
UMH_BROKER=$(head -1 "$T/boot")
"$BIN" -c "$D/protocol-converter-uns.yaml" 2>"$T/pc.err"
check_sh "protocol-converter-uns: exit 0" "[ $? = 0 ]"
"$BUILD/kafka_mock" dump "$UMH_BROKER" umh.messages >"$T/pc.tsv" 2>/dev/null
n=$(lines "$T/pc.tsv")
check_sh "protocol-converter-uns: downsampled records keyed by UMH topic ($n of 1200)" \
    "[ $n -gt 12 ] && [ $n -lt 1200 ] && awk -F'\t' '\$3 !~ /^umh\.v1\.enterprise\.plant1\.line4\._historian\./ {exit 1}' '$T/pc.tsv' && grep -q 'downsampled_by=deadband(threshold=1)' '$T/pc.tsv' && grep -q 'bridged_by=umh-core' '$T/pc.tsv'"
temps=$(awk -F'\t' '$3 ~ /\._historian\.Temperature$/' "$T/pc.tsv" | wc -l)
start_bg "$BIN" -c "$D/uns-dataflow.yaml" >/dev/null 2>"$T/flow.err"
FLOW_PID=$BG_PID
wait_until "[ \$('$BUILD/kafka_mock' count '$UMH_BROKER' umh.messages 2>/dev/null || echo 0) -ge $((n + temps)) ]" 120
stop_bg "$FLOW_PID"
"$BUILD/kafka_mock" dump "$UMH_BROKER" umh.messages >"$T/flow.tsv" 2>/dev/null
check_sh "uns-dataflow: one Fahrenheit record per Temperature record ($temps)" \
    "[ $temps -gt 0 ] && [ \$(awk -F'\t' '\$3 ~ /_historian\.Temperature_fahrenheit$/' '$T/flow.tsv' | wc -l) = $temps ] && awk -F'\t' '\$3 ~ /_fahrenheit$/' '$T/flow.tsv' | grep -q 'bridged_by=fahrenheit'"
finish
