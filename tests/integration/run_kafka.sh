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
#     reconnects, continues and loses nothing (duplicates counted), and the
#     records of each key stay in order (8 partitions);
#  5. a second member joins while the first is mid-stream, with a revoke
#     timeout far longer than the test: the revoke does not wait for the
#     first member's own unfinished batch (issue 9); nothing is lost and each
#     key stays in order (the in-flight records are drained before the
#     hand-over; the mock refuses the commit on revoke while the group
#     rebalances, so the new owner re-reads from the last periodic commit:
#     duplicates counted);
#  6. a record with more headers than max_meta_keys is dropped as
#     invalid_input, dead-lettered with its coordinates, and its offset is
#     committed like every other.
# The simulator's `timestamps: fixed` gives message i the timestamp
# 1700000000000 + i: it travels as metadata/header and becomes the payload's
# timestamp_ms, so every output names its input.
set -u
BIN=$(realpath "${1:-build/tagproc}")
BUILD=$(realpath "${2:-build}")
MOCK=$BUILD/kafka_mock
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
. tests/lib.sh
cleanup_on_exit

N=100000
RATE=20000 # producer messages/s while the group is split (so the kill is mid-stream)
case "$BUILD" in *asan*)
    N=20000
    RATE=4000
    ;;
esac
SHOW_TIMES=1
# dump TOPIC FILE: every record of TOPIC into FILE; complains when it fails.
dump() {
    "$MOCK" dump "$BOOT" "$1" >"$2" 2>"$T/dump.err" || {
        echo "kafka_mock dump $1 failed:"
        cat "$T/dump.err"
    }
}
count() { "$MOCK" count "$BOOT" "$1" 2>/dev/null || echo 0; }
# 0 when GROUP has committed every record of TOPIC.
all_committed() { # GROUP [TOPIC]
    "$MOCK" committed "$BOOT" "$1" "${2:-raw}" 2>/dev/null | awk '$2 != $3 {b=1} END {exit b}'
}

[ -x "$MOCK" ] || {
    bad "kafka_mock helper built ($MOCK)"
    finish
}
mkfifo "$T/ctl"
start_bg_stdin "$T/ctl" "$MOCK" serve 3 raw:8 out_split:8 out_clean:8 out_drain:8 out_outage:8 raw2:8 out_join:8 hdr:1 \
    >"$T/boot" 2>"$T/mock.err"
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
# One request in flight: chosen when the mock's sockets kept Nagle on (a
# pipelined response waited ~40 ms for a delayed ACK); kafka_mock now sets
# TCP_NODELAY like a real broker, the setting stays as validated.
# Short reconnect back-off: the outage phase should not wait up to 10 s.
OUT_PROPS="{max.in.flight.requests.per.connection: '1', reconnect.backoff.max.ms: '500'}"
GROUP_PROPS="{session.timeout.ms: '3000', heartbeat.interval.ms: '500', auto.commit.interval.ms: '500', reconnect.backoff.max.ms: '500'}"
# Groups whose members never die: a long session, so that a heartbeat late on
# a loaded machine does not evict the member (a rebalance mid-stream gives
# duplicates, which the exact checks would count).
STABLE_PROPS="{session.timeout.ms: '30000', heartbeat.interval.ms: '1000', auto.commit.interval.ms: '500', reconnect.backoff.max.ms: '500'}"
cat >"$T/produce.yaml" <<EOF
input:
  simulator: {nodes: 42, count: $N, rate: $RATE, seed: 7, timestamps: fixed}
pipeline: {threads: 2}
output:
  kafka: {brokers: "$BOOT", topic: raw, key_meta: opcua_node_id, compression: lz4, properties: $OUT_PROPS}
EOF
consumer_config() { # group, output topic, file[, input properties[, more input options]]
    cat >"$3" <<EOF
input:
  kafka:
    brokers: ["$BOOT"]
    topics: [raw]
    consumer_group: $1
    properties: ${4:-$GROUP_PROPS}
${5:-}
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
#   ordered: atleast, keys in one partition, and each key's first occurrences rising
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
if mode in ("exact", "atleast", "ordered"):
    missing = set(range(n)) - uniq
    if missing:
        errors.append("%d missing, e.g. %s" % (len(missing), sorted(missing)[:5]))
if mode in ("exact", "drain") and dups:
    errors.append("%d duplicates" % dups)
if mode == "ordered":  # redelivered duplicates repeat a run; new ids always rise
    for key, recs in per_key.items():
        if len({p for p, _, _ in recs}) != 1:
            errors.append("key %s in several partitions" % key)
        recs.sort()
        seen, top = set(), -1
        for _, _, i in recs:
            if i not in seen and i < top:
                errors.append("key %s: %d after %d" % (key, i, top))
                break
            seen.add(i)
            top = max(top, i)
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
start_bg "$BIN" -c "$T/split.yaml" >"$T/p1.out" 2>"$T/p1.err"
P1=$BG_PID
start_bg "$BIN" -c "$T/split.yaml" >"$T/p2.out" 2>"$T/p2.err"
P2=$BG_PID
if wait_until 'grep -q "assigned 4 partition" "$T/p1.err" && grep -q "assigned 4 partition" "$T/p2.err"' 40; then
    ok "two members split the 8 partitions 4/4"
else
    bad "two members split the 8 partitions 4/4"
    tail -5 "$T/p1.err" "$T/p2.err"
fi
start_bg "$BIN" -c "$T/produce.yaml" >"$T/prod.out" 2>"$T/prod.err"
PROD=$BG_PID
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
stop_bg "$P1"
check "survivor SIGTERM exit 0" test $? = 0
dump out_split "$T/split.tsv"
check "kill -9: nothing lost (duplicates allowed)" python3 "$T/verify.py" "$T/split.tsv" "$N" atleast

# ---- 2 and 3 side by side: clean run, and SIGTERM drain mid-stream ----
consumer_config clean out_clean "$T/clean.yaml" "$STABLE_PROPS"
consumer_config drain out_drain "$T/drain.yaml" "$STABLE_PROPS"
start_bg "$BIN" -c "$T/clean.yaml" >"$T/p3.out" 2>"$T/p3.err"
P3=$BG_PID
start_bg "$BIN" -c "$T/drain.yaml" >"$T/p4.out" 2>"$T/p4.err"
P4=$BG_PID
wait_until '[ "$(count out_drain)" -ge $((N / 3)) ]' 60
stop_bg "$P4"
check "drain SIGTERM exit 0" test $? = 0
wait_until 'all_committed clean' 90 || echo "clean group did not commit everything in time"
stop_bg "$P3"
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
consumer_config outage out_outage "$T/outage.yaml" "$STABLE_PROPS"
start_bg "$BIN" -c "$T/outage.yaml" >"$T/p5.out" 2>"$T/p5.err"
P5=$BG_PID
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
stop_bg "$P5"
check "outage SIGTERM exit 0" test $? = 0
dump out_outage "$T/outage.tsv"
check "broker outage: nothing lost (duplicates allowed), each key in order" \
    python3 "$T/verify.py" "$T/outage.tsv" "$N" ordered

# ---- 5. a second member joins while the first is mid-stream: the revoke does ----
# not wait for the first member's unfinished batch (revoke_timeout_ms far
# beyond the test); a backlog, and one output batch in flight at a time to
# keep the first member busy when the second joins.
sed -e 's/topic: raw,/topic: raw2,/' -e 's/rate: [0-9]*/rate: 0/' "$T/produce.yaml" >"$T/produce2.yaml"
"$BIN" -c "$T/produce2.yaml" >"$T/prod2.out" 2>"$T/prod2.err"
check "join mid-stream: raw2 holds $N records" test "$(count raw2)" = "$N"
consumer_config join out_join "$T/join.yaml" "$GROUP_PROPS" "    revoke_timeout_ms: 600000"
sed -i -e 's/topics: \[raw\]/topics: [raw2]/' -e 's/^output:/output:\n  max_in_flight: 1/' "$T/join.yaml"
start_bg "$BIN" -c "$T/join.yaml" >"$T/j1.out" 2>"$T/j1.err"
J1=$BG_PID
wait_until '[ "$(count out_join)" -ge $((N / 4)) ]' 60
start_bg "$BIN" -c "$T/join.yaml" >"$T/j2.out" 2>"$T/j2.err"
J2=$BG_PID
if wait_until 'grep -q "assigned 4 partition" "$T/j2.err"' 60; then
    ok "join mid-stream: the partitions were split 4/4 (revoke_timeout_ms not waited out)"
else
    bad "join mid-stream: the partitions were split 4/4 (revoke_timeout_ms not waited out)"
    grep -h "revok\|assign\|rebalance" "$T/j1.err" "$T/j2.err" | tail -5
fi
echo "second member joined with $(count out_join) outputs written"
wait_until 'all_committed join raw2' 90 || echo "join group did not commit everything in time"
kill -TERM $J1 $J2
wait $J1
r1=$?
wait $J2
check "join mid-stream: both members exit 0 on SIGTERM" test "$r1$?" = 00
dump out_join "$T/join.tsv"
check "join mid-stream: nothing lost, each key in order (duplicates counted)" \
    python3 "$T/verify.py" "$T/join.tsv" "$N" ordered

# ---- 6. more headers than max_meta_keys: dropped as invalid_input ----
python3 - "$T/hdr.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(20):
        n = 40 if i == 7 else 2  # record 7: 40 headers (+ 4-5 kafka_* fields) > 30
        f.write(json.dumps({"payload": i, "meta": {"h%d" % k: "v" for k in range(n)}}) + "\n")
PY
printf 'input: {stdin: {}}\noutput:\n  kafka: {brokers: "%s", topic: hdr, key_meta: h0}\n' "$BOOT" \
    >"$T/hdr-produce.yaml"
"$BIN" -c "$T/hdr-produce.yaml" <"$T/hdr.jsonl" >/dev/null 2>"$T/hdr-produce.err"
check "max_meta_keys: 20 records produced (got $(count hdr))" test "$(count hdr)" = 20
cat >"$T/hdr.yaml" <<EOF
input:
  kafka: {brokers: ["$BOOT"], topics: [hdr], consumer_group: hdr, max_meta_keys: 30,
          properties: $STABLE_PROPS}
output: {file: {path: "$T/hdr-out.jsonl"}}
dead_letter: {file: {path: "$T/hdr-dead.jsonl"}}
EOF
start_bg "$BIN" -c "$T/hdr.yaml" --stats "$T/hdr.stats" >"$T/hdr.out" 2>"$T/hdr.err"
HP=$BG_PID
wait_until 'all_committed hdr hdr' 60 || echo "hdr group did not commit everything in time"
stop_bg "$HP"
check "max_meta_keys: SIGTERM exit 0" test $? = 0
check "max_meta_keys: 19 records out, record 7 dead-lettered as invalid_input with its offset" \
    python3 tests/tools/check_max_meta_keys_drop.py "$T/hdr-out.jsonl" "$T/hdr-dead.jsonl" "$T/hdr.stats" \
    "kafka topic hdr partition"
finish
