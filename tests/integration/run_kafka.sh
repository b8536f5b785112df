#!/usr/bin/env bash
# Kafka end to end against librdkafka's mock cluster (tests/tools/kafka_mock,
# 3 brokers on 127.0.0.1): simulator -> kafka output (raw topic), then
# kafka input -> tag_processor -> kafka output (UNS topic), checked by reading
# the topics back with `kafka_mock dump` and the group's committed offsets.
#  1. two tagprocs in one consumer group split the partitions; one is killed
#     with -9 mid-stream: after the rebalance nothing is lost (duplicates counted);
#  2. clean run with threads: 2: every message exactly once, in order per key;
#  3. SIGTERM drain mid-stream: exit 0, and every input record whose offset was
#     committed (acknowledged) has its output in the UNS topic;
#  4. every broker goes down mid-stream and comes back: the same tagproc
#     reconnects, continues and loses nothing (duplicates counted).
# The simulator's `timestamps: fixed` gives message i the timestamp
# 1700000000000 + i: it travels as metadata/header and becomes the payload's
# timestamp_ms, so every output names its input.
set -u
BIN=$(realpath "${1:-build/tagproc}")
BUILD=$(realpath "${2:-build}")
MOCK=$BUILD/kafka_mock
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
MOCK_PID=
TP_PIDS=()
cleanup() {
    for p in "${TP_PIDS[@]}" $MOCK_PID; do
        kill -9 "$p" 2>/dev/null
    done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

N=100000
RATE=20000 # producer messages/s while the group is split (so the kill is mid-stream)
case "$BUILD" in *asan*)
    N=20000
    RATE=4000
    ;;
esac
SHOW_TIMES=1
. tests/lib.sh
# dump TOPIC FILE: every record of TOPIC into FILE; complains when it fails.
dump() {
    "$MOCK" dump "$BOOT" "$1" >"$2" 2>"$T/dump.err" || {
        echo "kafka_mock dump $1 failed:"
        cat "$T/dump.err"
    }
}
count() { "$MOCK" count "$BOOT" "$1" 2>/dev/null || echo 0; }
# 0 when GROUP has committed every record of TOPIC.
all_committed() { "$MOCK" committed "$BOOT" "$1" raw 2>/dev/null | awk '$2 != $3 {b=1} END {exit b}'; }

[ -x "$MOCK" ] || {
    bad "kafka_mock helper built ($MOCK)"
    finish
}
mkfifo "$T/ctl"
"$MOCK" serve 3 raw:8 out_split:8 out_clean:8 out_drain:8 out_outage:8 <"$T/ctl" >"$T/boot" \
    2>"$T/mock.err" &
MOCK_PID=$!
exec 3>"$T/ctl" # commands to the mock: "down 0" / "up 0"
wait_until '[ -s "$T/boot" ]' 20 || {
    bad "mock cluster started"
    cat "$T/mock.err"
    finish
}
BOOT=$(head -1 "$T/boot")
echo "mock cluster: $BOOT"

# The mock keeps ~5 MB per partition (older records are pruned): lz4 keeps
# 100,000 records well inside that. Short sessions: the mock only forgets a
# member that left when its session times out.
# The mock broker's sockets keep Nagle on: a second pipelined response waits
# for the client's delayed ACK (~40 ms). One request in flight avoids that.
# Short reconnect back-off: the outage phase should not wait up to 10 s.
OUT_PROPS="{max.in.flight.requests.per.connection: '1', reconnect.backoff.max.ms: '500'}"
GROUP_PROPS="{session.timeout.ms: '3000', heartbeat.interval.ms: '500', auto.commit.interval.ms: '500', reconnect.backoff.max.ms: '500'}"
cat >"$T/produce.yaml" <<EOF
input:
  simulator: {nodes: 42, count: $N, rate: $RATE, seed: 7, timestamps: fixed}
pipeline: {threads: 2}
output:
  kafka: {brokers: "$BOOT", topic: raw, key_meta: opcua_node_id, compression: lz4, properties: $OUT_PROPS}
EOF
consumer_config() { # group, output topic, file
    cat >"$3" <<EOF
input:
  kafka:
    brokers: ["$BOOT"]
    topics: [raw]
    consumer_group: $1
    properties: $GROUP_PROPS
pipeline:
  threads: 2
  processors:
    - tag_processor:
        defaults: |
          msg.meta.location_path = "enterprise.plant1.line1";
          msg.meta.data_contract = "_historian";
          msg.meta.tag_name = msg.meta.opcua_tag_name;
          msg.meta.virtual_path = "n" + msg.meta.opcua_node_id.replace(/[^0-9]/g, "");
          return msg;
output:
  kafka: {brokers: "$BOOT", topic: $2, compression: lz4, properties: $OUT_PROPS}
EOF
}
cat >"$T/verify.py" <<'EOF'
# verify.py DUMP N MODE [RAW_DUMP COMMITTED]: checks a dump of a UNS topic.
#   exact: every id 0..N-1 exactly once, keys in one partition, ids rising per key
#   atleast: every id at least once (duplicates counted)
#   drain: no duplicates; every raw record below the committed offset is present
import json, sys
dump, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ids, per_key, errors = [], {}, []
for line in open(dump):
    part, off, key, hdrs, payload = line.rstrip("\n").split("\t", 4)
    i = json.loads(payload)["timestamp_ms"] - 1700000000000
    ids.append(i)
    per_key.setdefault(key, []).append((int(part), int(off), i))
    h = dict(kv.split("=", 1) for kv in hdrs.split(";") if kv)
    if h.get("umh_topic") != key or any(k.startswith("kafka_") for k in h):
        errors.append("bad key/headers: %s %s" % (key, hdrs))
uniq = set(ids)
dups = len(ids) - len(uniq)
if mode in ("exact", "atleast"):
    missing = set(range(n)) - uniq
    if missing:
        errors.append("%d missing, e.g. %s" % (len(missing), sorted(missing)[:5]))
if mode in ("exact", "drain") and dups:
    errors.append("%d duplicates" % dups)
if mode == "exact":
    for key, recs in per_key.items():
        if len({p for p, _, _ in recs}) != 1:
            errors.append("key %s in several partitions" % key)
        recs.sort()
        seq = [i for _, _, i in recs]
        if seq != sorted(seq):
            errors.append("key %s out of order" % key)
if mode == "drain":
    committed = {int(l.split()[0]): int(l.split()[1]) for l in open(sys.argv[5])}
    acked = 0
    for line in open(sys.argv[4]):
        part, off, _, hdrs, _ = line.rstrip("\n").split("\t", 4)
        if int(off) < committed.get(int(part), -1):
            acked += 1
            i = int(hdrs.split("timestamp_ms=")[1].split(";")[0]) - 1700000000000
            if i not in uniq:
                errors.append("acknowledged input %d missing from the output" % i)
                break
    print("drain: %d of %d input records were acknowledged; %d outputs" % (acked, n, len(ids)))
print("%d records, %d unique, %d duplicates, %d keys" % (len(ids), len(uniq), dups, len(per_key)))
for e in errors[:10]:
    print(e)
sys.exit(1 if errors else 0)
EOF

# ---- 1. two members split the partitions; kill -9 one mid-stream ----
consumer_config split out_split "$T/split.yaml"
"$BIN" -c "$T/split.yaml" >"$T/p1.out" 2>"$T/p1.err" &
P1=$!
TP_PIDS+=($P1)
"$BIN" -c "$T/split.yaml" >"$T/p2.out" 2>"$T/p2.err" &
P2=$!
TP_PIDS+=($P2)
if wait_until 'grep -q "assigned 4 partition" "$T/p1.err" && grep -q "assigned 4 partition" "$T/p2.err"' 40; then
    ok "two members split the 8 partitions 4/4"
else
    bad "two members split the 8 partitions 4/4"
    tail -5 "$T/p1.err" "$T/p2.err"
fi
"$BIN" -c "$T/produce.yaml" >"$T/prod.out" 2>"$T/prod.err" &
PROD=$!
TP_PIDS+=($PROD)
wait_until '[ "$(count out_split)" -ge $((N / 4)) ]' 60
{
    kill -9 $P2
    wait $P2
} 2>/dev/null
echo "killed one member with $(count out_split) outputs written"
wait $PROD
check "producer exit 0" test $? = 0
check "raw topic holds $N records" test "$(count raw)" = "$N"
if wait_until 'all_committed split' 90; then
    ok "survivor took over and committed everything"
else
    bad "survivor took over and committed everything"
    "$MOCK" committed "$BOOT" split raw
fi
check "survivor was assigned all 8 partitions" grep -q "assigned 8 partition" "$T/p1.err"
kill -TERM $P1
wait $P1
check "survivor SIGTERM exit 0" test $? = 0
dump out_split "$T/split.tsv"
check "kill -9: nothing lost (duplicates allowed)" python3 "$T/verify.py" "$T/split.tsv" "$N" atleast

# ---- 2 and 3 side by side: clean run, and SIGTERM drain mid-stream ----
consumer_config clean out_clean "$T/clean.yaml"
consumer_config drain out_drain "$T/drain.yaml"
"$BIN" -c "$T/clean.yaml" >"$T/p3.out" 2>"$T/p3.err" &
P3=$!
TP_PIDS+=($P3)
"$BIN" -c "$T/drain.yaml" >"$T/p4.out" 2>"$T/p4.err" &
P4=$!
TP_PIDS+=($P4)
wait_until '[ "$(count out_drain)" -ge $((N / 3)) ]' 60
kill -TERM $P4
wait $P4
check "drain SIGTERM exit 0" test $? = 0
wait_until 'all_committed clean' 90 || echo "clean group did not commit everything in time"
kill -TERM $P3
wait $P3
check "clean run SIGTERM exit 0" test $? = 0
dump out_clean "$T/clean.tsv"
check "clean run (threads: 2): every message exactly once, in order per key" \
    python3 "$T/verify.py" "$T/clean.tsv" "$N" exact
dump raw "$T/raw.tsv"
"$MOCK" committed "$BOOT" drain raw >"$T/committed"
dump out_drain "$T/drain.tsv"
check "drain: every acknowledged input is in the output" \
    python3 "$T/verify.py" "$T/drain.tsv" "$N" drain "$T/raw.tsv" "$T/committed"

# ---- 4. all brokers down mid-stream, then back ----
consumer_config outage out_outage "$T/outage.yaml"
"$BIN" -c "$T/outage.yaml" >"$T/p5.out" 2>"$T/p5.err" &
P5=$!
TP_PIDS+=($P5)
wait_until '[ "$(count out_outage)" -ge $((N / 4)) ]' 60
echo "brokers go down with $(count out_outage) outputs written"
echo "down 0" >&3
if wait_until 'grep -q "ALL_BROKERS_DOWN" "$T/p5.err"' 30; then
    ok "tagproc saw every broker go away"
else
    bad "tagproc saw every broker go away"
fi
echo "up 0" >&3
if wait_until 'all_committed outage' 90; then
    ok "reconnected and committed everything without a restart"
else
    bad "reconnected and committed everything without a restart"
    "$MOCK" committed "$BOOT" outage raw
fi
kill -TERM $P5
wait $P5
check "outage SIGTERM exit 0" test $? = 0
dump out_outage "$T/outage.tsv"
check "broker outage: nothing lost (duplicates allowed)" \
    python3 "$T/verify.py" "$T/outage.tsv" "$N" atleast
finish
