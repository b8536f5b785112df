#!/usr/bin/env bash
# uns output and input end to end against librdkafka's mock cluster
# (tests/tools/kafka_mock, on 127.0.0.1):
#  1. a UMH-style config (`${ENV:default}` broker address, `${! meta("...") }`
#     template, `level: INFO`) with the `uns` output writes the same records
#     (topic, key, headers, value) as the `kafka` output configured as UMH
#     does (umh.messages, key umh_topic, bridged_by header), into a second
#     mock cluster;
#  2. round trip uns output -> uns input: umh_topics selects the keys, every
#     selected record comes out once with umh_topic, headers and kafka_*
#     metadata, and the group commits everything it read;
#  3. a message without umh_topic is counted and dead-lettered (invalid_topic);
#  4. `output: uns: {}` / `input: uns: {}` pass lint as written;
#  5. a missing umh.messages is created with 1 partition and
#     cleanup.policy=compact,delete, an existing one is left alone (against
#     tests/tools/kafka_admin_fake.py: the mock cluster has no CreateTopics).
set -u
BIN=$(realpath "${1:-build/tagproc}")
BUILD=$(realpath "${2:-build}")
MOCK=$BUILD/kafka_mock
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
. tests/lib.sh
cleanup_on_exit

N=2000
[ -x "$MOCK" ] || {
    bad "kafka_mock helper built ($MOCK)"
    finish
}
# start_mock NAME: a one-broker cluster with umh.messages (1 partition, as
# the uns output creates it); its address in $T/NAME.boot.
start_mock() {
    start_bg "$MOCK" serve 1 umh.messages:1 </dev/null >"$T/$1.boot" 2>"$T/$1.err"
    wait_until "[ -s '$T/$1.boot' ]" 60 || {
        bad "mock cluster $1 started"
        cat "$T/$1.err"
        finish
    }
}
start_mock a
start_mock b
BOOT_A=$(head -1 "$T/a.boot")
BOOT_B=$(head -1 "$T/b.boot")

# ---- 1. uns output == kafka output as UMH configures it ----
pipeline() { # the UMH-style pipeline; $1: extra tag_processor line
    cat <<EOF
input:
  simulator: {nodes: 6, count: $N, seed: 11, timestamps: fixed}
pipeline:
  processors:
    - tag_processor:
        defaults: |
          msg.meta.location_path = "enterprise.plant1.line\${LINE:4}";
          msg.meta.data_contract = "_historian";
          msg.meta.tag_name = msg.meta.opcua_tag_name;
          $1
          return msg;
logger:
  level: INFO
EOF
}
{
    pipeline ""
    cat <<'EOF'
output:
  uns:
    broker_address: ${KAFKA_BROKER:localhost:9092}
    umh_topic: '${! meta("umh_topic") }'
EOF
} >"$T/uns.yaml"
{
    pipeline 'msg.meta.bridged_by = "umh-core";'
    cat <<'EOF'
output:
  kafka:
    brokers: ${KAFKA_BROKER:localhost:9092}
    topic: umh.messages
    key_meta: umh_topic
EOF
} >"$T/kafka.yaml"
KAFKA_BROKER=$BOOT_A "$BIN" -c "$T/uns.yaml" >"$T/uns.out" 2>"$T/uns.err"
check "UMH-style config with the uns output: exit 0" test $? = 0
check "uns output logs at level INFO" grep -q "info  tagproc .* starting" "$T/uns.err"
KAFKA_BROKER=$BOOT_B "$BIN" -c "$T/kafka.yaml" >"$T/kafka.out" 2>"$T/kafka.err"
check "same pipeline with the kafka output: exit 0" test $? = 0
"$MOCK" dump "$BOOT_A" umh.messages >"$T/uns.tsv" 2>"$T/dump.err"
"$MOCK" dump "$BOOT_B" umh.messages >"$T/kafka.tsv" 2>>"$T/dump.err"
cat >"$T/same.py" <<'EOF'
# same.py A B N: both dumps hold N records, equal one by one in key, headers
# (as a set: the order of bridged_by may differ) and value; keys are UMH topics.
import sys
def load(path):
    out = []
    for line in open(path):
        part, off, key, hdrs, value = line.rstrip("\n").split("\t", 4)
        out.append((part, off, key, sorted(h for h in hdrs.split(";") if h), value))
    return out
a, b, n = load(sys.argv[1]), load(sys.argv[2]), int(sys.argv[3])
print("%d and %d records" % (len(a), len(b)))
assert len(a) == n and len(b) == n
for x, y in zip(a, b):
    assert x == y, "differ:\n  %s\n  %s" % (x, y)
    assert x[2].startswith("umh.v1.enterprise.plant1.line4._historian."), x
    assert "bridged_by=umh-core" in x[3] and not any(h.startswith("kafka_") for h in x[3]), x
print("e.g. key %s headers %s" % (a[0][2], ";".join(a[0][3])))
EOF
check "uns output records == kafka output records (topic umh.messages, key, headers, value)" \
    python3 "$T/same.py" "$T/uns.tsv" "$T/kafka.tsv" "$N"

# ---- 2. round trip: uns input reads what the uns output wrote ----
cat >"$T/in.yaml" <<EOF
input:
  uns:
    broker_address: $BOOT_A
    consumer_group: roundtrip
    umh_topics: ['\.line4\._historian\.(Temperature|Pressure)\$']
output:
  file: {path: $T/in.jsonl}
EOF
awk -F'\t' '$3 ~ /\.line4\._historian\.(Temperature|Pressure)$/' "$T/uns.tsv" >"$T/want.tsv"
WANT=$(wc -l <"$T/want.tsv")
start_bg "$BIN" -c "$T/in.yaml" >"$T/in.out" 2>"$T/in.err"
IN_PID=$BG_PID
wait_until '[ "$(lines "$T/in.jsonl")" -ge "$WANT" ]' 120
all_committed() { "$MOCK" committed "$BOOT_A" roundtrip umh.messages 2>/dev/null | awk '$2 != $3 {b=1} END {exit b}'; }
if wait_until all_committed 60; then
    ok "uns input committed every record of umh.messages (read or filtered)"
else
    bad "uns input committed every record of umh.messages (read or filtered)"
    "$MOCK" committed "$BOOT_A" roundtrip umh.messages
fi
stop_bg "$IN_PID"
check "uns input SIGTERM exit 0" test $? = 0
cat >"$T/roundtrip.py" <<'EOF'
# roundtrip.py WANT_TSV GOT_JSONL: every wanted record once, in order, with
# umh_topic = key, its headers as metadata and the kafka_* metadata.
import json, sys
want = [l.rstrip("\n").split("\t", 4) for l in open(sys.argv[1])]
got = [json.loads(l) for l in open(sys.argv[2])]
print("%d records selected of umh.messages, %d read" % (len(want), len(got)))
assert want and len(got) == len(want)
for (part, off, key, hdrs, value), m in zip(want, got):
    meta = m["meta"]
    assert meta["umh_topic"] == key == meta["kafka_key"] == meta["kafka_msg_key"], meta
    assert meta["kafka_topic"] == "umh.messages" and meta["kafka_offset"] == off, meta
    assert ";".join("%s=%s" % kv for kv in meta.items() if not kv[0].startswith("kafka_")) == hdrs
    assert json.loads(value) == m["payload"], (value, m["payload"])
EOF
check "round trip: umh_topics selected the keys; metadata = headers + umh_topic + kafka_*" \
    python3 "$T/roundtrip.py" "$T/want.tsv" "$T/in.jsonl"

# ---- 3. a message without umh_topic: counted, dead-lettered ----
cat >"$T/dl.yaml" <<EOF
input:
  stdin: {}
output:
  uns: {broker_address: "$BOOT_B", bridged_by: gateway-1}
dead_letter:
  file: {path: $T/dead.jsonl}
EOF
printf '%s\n' '{"payload":1,"meta":{"umh_topic":"umh.v1.e.s._raw.a b"}}' \
    '{"payload":2,"meta":{"site":"s"}}' | "$BIN" -c "$T/dl.yaml" >"$T/dl.out" 2>"$T/dl.err"
check "invalid topic run: exit 0" test $? = 0
check "invalid topic: counted in the final stats" grep -q "dropped=1 (invalid_topic=1)" "$T/dl.err"
check_sh "invalid topic: dead-lettered with reason and error" \
    "grep -q '\"payload\":2.*\"tagproc_drop_reason\":\"invalid_topic\".*without umh_topic' '$T/dead.jsonl'"
check_sh "the valid one: key sanitised, bridged_by set" \
    "'$MOCK' dump '$BOOT_B' umh.messages | grep -P '\tumh\.v1\.e\.s\._raw\.a_b\t.*bridged_by=gateway-1\t1$'"

# ---- 4. the UMH one-liners pass lint as written ----
printf 'input:\n  uns: {}\noutput:\n  uns: {}\n' >"$T/oneliner.yaml"
check "input: uns: {} / output: uns: {} lint clean" "$BIN" lint "$T/oneliner.yaml"
printf 'input:\n  uns:\n    umh_topics: ["umh\\\\.v1", "a(b"]\noutput:\n  uns: {}\n' >"$T/badre.yaml"
"$BIN" lint "$T/badre.yaml" >"$T/badre.out" 2>&1
check_sh "invalid umh_topics regex: lint error at FILE:LINE:COL" \
    "grep -q 'badre.yaml:3:[0-9]*: .*umh_topics\[1\]: invalid regular expression' '$T/badre.out'"

# ---- 5. topic creation ----
start_bg python3 tests/tools/kafka_admin_fake.py >"$T/fake.out" 2>"$T/fake.err"
wait_until '[ -s "$T/fake.out" ]' 60 || cat "$T/fake.err"
printf 'input:\n  stdin: {}\noutput:\n  uns: {broker_address: "127.0.0.1:%s"}\n' \
    "$(head -1 "$T/fake.out")" >"$T/create.yaml"
"$BIN" -c "$T/create.yaml" </dev/null >"$T/create1.out" 2>"$T/create1.err"
check "missing umh.messages: created with 1 partition, cleanup.policy=compact,delete" \
    grep -qx "create umh.messages partitions=1 replication=-1 cleanup.policy=compact,delete" \
    "$T/fake.out"
check "topic creation logged" grep -q "created topic umh.messages" "$T/create1.err"
"$BIN" -c "$T/create.yaml" </dev/null >"$T/create2.out" 2>"$T/create2.err"
check "existing umh.messages: not created again" test "$(grep -c '^create ' "$T/fake.out")" = 1
finish
