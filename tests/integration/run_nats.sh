#!/usr/bin/env bash
# NATS / JetStream end to end against a real `nats-server -js` on random free
# ports of 127.0.0.1: simulator -> tag_processor -> JetStream stream OUT, then
# durable pull consumers (threads: 2) -> file: exactly once and in order per key
# in a clean run, nothing lost after kill -9 + restart (duplicates counted),
# SIGTERM drain (everything acked is in the output), a server restart under a
# consumer and under a JetStream producer, a core NATS queue group, and
# per-message drops of unbuildable subjects (dead-lettered and counted once),
# messages with more headers than max_meta_keys (dead-lettered, acked),
# negative PubAcks (no stream for the subject, another stream), and
# SIGTERM with the server gone under a JetStream output that retries forever.
set -u
BIN=$(realpath "${1:-build/tagproc}")
BUILD=${2:-build}
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
[ -n "${KEEP_T:-}" ] && echo "temp dir $T"
. tests/lib.sh
cleanup_on_exit # (its exec 2>/dev/null: no "Killed" job notices after the summary line)

N=100000
case "$BUILD" in *asan*) N=20000 ;; esac
NODES=50
. tests/integration/nats_lib.sh

# Consumer config: durable $1, output file $2, ack_wait $3.
consumer_config() {
    cat >"$T/c_$1.yaml" <<EOF
input:
  nats:
    urls: [$URL]
    subjects: ["umh.>"]
    jetstream:
      stream: OUT
      durable: $1
      ack_wait: $3
      max_ack_pending: 2000
pipeline:
  threads: 2
output:
  file:
    path: $2
    mode: append
EOF
}
start_consumer() { # durable, log name
    start_bg "$BIN" -c "$T/c_$1.yaml" >>"$T/$2.log" 2>&1
    TP_PID=$BG_PID
}

# ---- the analysis of an output file (JSON Lines envelopes with meta) ----
cat >"$T/analyse.py" <<'EOF'
import json, sys
path, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
floor = int(sys.argv[4]) if len(sys.argv) > 4 else 0
seqs, last_seq, last_val, problems = {}, {}, {}, []
for i, line in enumerate(open(path), 1):
    e = json.loads(line)
    m = e["meta"]
    seq, key = int(m["nats_sequence"]), m["opcua_node_id"]
    seqs[seq] = seqs.get(seq, 0) + 1
    if mode == "clean":
        if key in last_seq and seq <= last_seq[key]:
            problems.append(f"line {i}: {key}: stream seq {seq} after {last_seq[key]}")
        # the simulator's per-node reading order travels in the payload timestamp
        ts = e["payload"]["timestamp_ms"] if isinstance(e["payload"], dict) else None
        if ts is not None and key in last_val and ts <= last_val[key]:
            problems.append(f"line {i}: {key}: timestamp {ts} after {last_val[key]}")
        last_seq[key], last_val[key] = seq, ts
        # after a stop at ack floor `floor`, messages past it may come again:
        # delivered ahead of the pipeline, returned unprocessed (NAK)
        if m.get("nats_num_delivered") != "1" and seq <= floor:
            problems.append(f"line {i}: redelivered ({m.get('nats_num_delivered')})")
        if m.get("nats_stream") != "OUT" or m.get("nats_subject") != m.get("umh_topic"):
            problems.append(f"line {i}: nats_stream/nats_subject {m.get('nats_stream')} {m.get('nats_subject')}")
total, distinct = sum(seqs.values()), len(seqs)
missing = [s for s in range(1, n + 1) if s not in seqs]
dups = total - distinct
print(f"lines={total} distinct={distinct} duplicates={dups} missing={len(missing)}")
if mode == "clean":
    ok = total == n and distinct == n and not problems
elif mode == "complete":
    ok = not missing
else:  # "acked": every stream seq up to the ack floor is present, nothing doubled
    absent = [s for s in range(1, floor + 1) if s not in seqs]
    print(f"ack_floor={floor} acked_missing={len(absent)} output_not_acked={sum(1 for s in seqs if s > floor)}")
    ok = not absent and dups == 0
for p in problems[:10]:
    print(p)
sys.exit(0 if ok else 1)
EOF

# ---- 0. server ----
if ! start_server; then
    bad "nats-server starts"
    cat "$T/server.log"
    finish
fi
ok "nats-server -js on 127.0.0.1:$PORT"

# ---- 1. producer: simulator -> tag_processor -> JetStream OUT ----
cat >"$T/producer.yaml" <<EOF
input:
  simulator:
    nodes: $NODES
    count: $N
    rate: 0
    seed: 7
    timestamps: fixed
pipeline:
  threads: 2
  processors:
    - tag_processor:
        defaults: |
          msg.meta.location_path = "enterprise.plant1.machiningArea.cnc-line.cnc5.plc123";
          msg.meta.data_contract = "_historian";
          msg.meta.tag_name = msg.meta.opcua_tag_name;
          return msg;
output:
  nats:
    urls: [$URL]
    jetstream: true
    stream: OUT
    create_stream: true
    stream_subjects: ["umh.>"]
EOF
"$BIN" -c "$T/producer.yaml" --stats "$T/producer.stats" >"$T/producer.log" 2>&1
rc=$?
check "producer exits 0" test "$rc" = 0
read -r msgs _ <<<"$(jsz OUT)"
check "stream OUT holds exactly $N messages (got $msgs)" test "$msgs" = "$N"
if [ "$msgs" != "$N" ]; then
    sed 's/^/    /' "$T/producer.log" | tail -20
    finish
fi

# ---- 2. clean run: durable A, threads 2 -> file: exactly once, order per key ----
consumer_config A "$T/a.jsonl" 60s
start_consumer A a
wait_until '[ "$(jsz OUT A | cut -d" " -f2)" = "$N" ]' 120
check "clean: consumer acks all $N" test "$(jsz OUT A | cut -d' ' -f2)" = "$N"
stop_bg "$TP_PID"
rc=$?
check "clean: SIGTERM exit 0" test "$rc" = 0
check "clean: every message exactly once, order kept per opcua_node_id" \
    python3 "$T/analyse.py" "$T/a.jsonl" "$N" clean
cat "$T/check.out" | head -1

# ---- 3. kill -9 mid-stream, restart with the same durable: nothing lost ----
consumer_config B "$T/b.jsonl" 2s
start_consumer B b
wait_until '[ "$(lines "$T/b.jsonl")" -ge $((N / 3)) ]' 120
kill -9 "$TP_PID"
wait "$TP_PID" 2>/dev/null
before=$(lines "$T/b.jsonl")
check "kill -9: killed mid-stream ($before of $N written)" test "$before" -lt "$N"
start_consumer B b2
wait_until '[ "$(jsz OUT B | cut -d" " -f2)" = "$N" ]' 120
stop_bg "$TP_PID"
check "kill -9: restarted consumer drains with exit 0" test $? = 0
check "kill -9: nothing lost after restart" python3 "$T/analyse.py" "$T/b.jsonl" "$N" complete
echo "    $(head -1 "$T/check.out") (duplicates are redeliveries of unacked messages)"

# ---- 4. SIGTERM mid-stream: everything acked to JetStream is in the output ----
consumer_config C "$T/c.jsonl" 60s
start_consumer C c
wait_until '[ "$(lines "$T/c.jsonl")" -ge $((N / 4)) ]' 120
stop_bg "$TP_PID"
check "drain: SIGTERM mid-stream exits 0" test $? = 0
floor=$(jsz OUT C | cut -d' ' -f2)
check "drain: stopped mid-stream (ack floor $floor of $N)" test "$floor" -lt "$N"
check "drain: every acked message is in the output" \
    python3 "$T/analyse.py" "$T/c.jsonl" "$N" acked "$floor"
echo "    $(tail -1 "$T/check.out")"
start_consumer C c2
wait_until '[ "$(jsz OUT C | cut -d" " -f2)" = "$N" ]' 120
stop_bg "$TP_PID"
check "drain: the restarted consumer completes the stream exactly once, in order" \
    python3 "$T/analyse.py" "$T/c.jsonl" "$N" clean "$floor"

# ---- 5. the server goes away mid-stream and comes back ----
consumer_config D "$T/d.jsonl" 5s
start_consumer D d
wait_until '[ "$(lines "$T/d.jsonl")" -ge $((N / 4)) ]' 120
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
if start_server; then
    wait_until '[ "$(jsz OUT D | cut -d" " -f2)" = "$N" ]' 120
    check "server restart: consumer reconnects and acks all $N" \
        test "$(jsz OUT D | cut -d' ' -f2)" = "$N"
    check "server restart: nothing lost" python3 "$T/analyse.py" "$T/d.jsonl" "$N" complete
    check "server restart: reconnect logged" grep -q "reconnected to" "$T/d.log"
else
    bad "server restart: nats-server starts again"
fi
stop_bg "$TP_PID"
check "server restart: SIGTERM exit 0" test $? = 0

# ---- 6. core NATS: subject template, headers, a queue group of two consumers ----
CN=$((N / 10))
for q in q1 q2; do
    cat >"$T/$q.yaml" <<EOF
input:
  nats:
    urls: [$URL]
    subjects: ["core.>"]
    queue_group: workers
output:
  file:
    path: $T/$q.jsonl
EOF
    start_bg "$BIN" -c "$T/$q.yaml" >"$T/$q.log" 2>&1
done
Q1=${BG_PIDS[-2]}
Q2=${BG_PIDS[-1]}
# both queue subscriptions registered with the server
subs() { curl -sf "http://127.0.0.1:$MPORT/connz?subs=true" | grep -c '"core\.'; }
check "core: both queue subscriptions registered" wait_until '[ "$(subs)" -ge 2 ]' 30
cat >"$T/core_producer.yaml" <<EOF
input:
  simulator: {nodes: $NODES, count: $CN, rate: 0, timestamps: fixed}
output:
  nats:
    urls: [$URL]
    subject: "core.{{meta.opcua_node_id}}"
EOF
"$BIN" -c "$T/core_producer.yaml" >"$T/core_producer.log" 2>&1
check "core: producer exits 0" test $? = 0
wait_until '[ $(($(lines "$T/q1.jsonl") + $(lines "$T/q2.jsonl"))) -ge $CN ]' 60
kill -TERM "$Q1" "$Q2"
wait "$Q1"
r1=$?
wait "$Q2"
r2=$?
check "core: both consumers exit 0 on SIGTERM" test "$r1$r2" = 00
c1=$(lines "$T/q1.jsonl")
c2=$(lines "$T/q2.jsonl")
check "core: the queue group shares the $CN messages ($c1 + $c2), each once" \
    test $((c1 + c2)) = "$CN" -a "$c1" -gt 0 -a "$c2" -gt 0
check "core: subject from the template and headers as metadata" python3 -c '
import json, sys
e = json.loads(open(sys.argv[1]).readline())
m = e["meta"]
assert m["nats_subject"] == "core." + m["opcua_node_id"], m
assert "opcua_tag_name" in m, m' "$T/q1.jsonl"

# ---- 7. JetStream output while the server restarts: retried batches stored once ----
PN=$((N / 5))
sed -e "s/count: $N/count: $PN/" -e "s/rate: 0/rate: $((PN / 5))/" -e "s/stream: OUT/stream: OUT2/" \
    -e 's/stream_subjects: \["umh.>"\]/stream_subjects: ["umh.>"]\n    ack_timeout: 2s/' \
    "$T/producer.yaml" >"$T/producer2.yaml"
# OUT already binds umh.>: give OUT2 its own subjects
sed -i -e 's/stream_subjects: \["umh.>"\]/stream_subjects: ["p2.>"]/' \
    -e 's/    jetstream: true/    subject: "p2.{{meta.umh_topic}}"\n    jetstream: true/' "$T/producer2.yaml"
start_bg "$BIN" -c "$T/producer2.yaml" >"$T/producer2.log" 2>&1
PP=$BG_PID
wait_until '[ "$(jsz OUT2 | cut -d" " -f1)" -ge $((PN / 4)) ]' 60
check "publish under restart: producer still running at the kill" kill -0 "$PP"
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
start_server || bad "publish under restart: nats-server starts again"
wait "$PP"
check "publish under restart: producer exits 0" test $? = 0
check "publish under restart: OUT2 holds exactly $PN messages (got $(jsz OUT2 | cut -d' ' -f1))" \
    test "$(jsz OUT2 | cut -d' ' -f1)" = "$PN"

# ---- per-message drop: a subject that cannot be built (missing key, wildcard) ----
# is dead-lettered once and counted once; every other message is stored and
# the run ends 0 with a window of batches in flight.
python3 - "$T/bad-subjects.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(300):
        meta = {"k": "ok%d" % (i % 7)}
        if i % 50 == 3:
            meta = {}  # no `k`: no subject
        elif i % 50 == 4:
            meta = {"k": "a.>"}  # a wildcard cannot be published to
        f.write(json.dumps({"payload": i, "meta": meta}) + "\n")
PY
cat >"$T/bad-subjects.yaml" <<EOF
input: {file: {path: "$T/bad-subjects.jsonl"}}
pipeline: {threads: 2, batch_size: 16}
output:
  max_in_flight: 8
  nats:
    urls: [$URL]
    subject: "bad.{{meta.k}}"
    jetstream: true
    stream: BAD
    create_stream: true
    stream_subjects: ["bad.>"]
dead_letter: {file: {path: "$T/bad-dead.jsonl"}}
EOF
"$BIN" -c "$T/bad-subjects.yaml" --stats "$T/bad.stats" >"$T/bad.log" 2>&1
check "invalid subjects: run exits 0" test $? = 0
cat >"$T/bad-check.py" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
got = sorted(r["payload"] for r in recs)
want = sorted(i for i in range(300) if i % 50 in (3, 4))
assert got == want, (got, want)
assert all(r["meta"]["tagproc_drop_reason"] == "invalid_topic" for r in recs)
assert all(r["meta"]["tagproc_drop_stage"] == "output" for r in recs)
s = json.load(open(sys.argv[2]))
assert s["dropped"].get("invalid_topic") == 12, s
assert s["processed"] == 288, s
PY
check "invalid subjects: 12 dead-letter records, each once, counted once as invalid_topic" \
    python3 "$T/bad-check.py" "$T/bad-dead.jsonl" "$T/bad.stats"
check "invalid subjects: stream BAD holds the other 288 (got $(jsz BAD | cut -d' ' -f1))" \
    test "$(jsz BAD | cut -d' ' -f1)" = 288

# ---- more headers than max_meta_keys: dropped as invalid_input, then acked ----
python3 - "$T/hdr.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(20):
        n = 40 if i == 7 else 2  # message 7: 40 headers (+ nats_* fields) > 30
        f.write(json.dumps({"payload": i, "meta": {"h%d" % k: "v" for k in range(n)}}) + "\n")
PY
cat >"$T/hdr-produce.yaml" <<EOF
input: {stdin: {}}
output:
  nats: {urls: [$URL], subject: "hdr.{{meta.h0}}", jetstream: true, stream: HDR,
         create_stream: true, stream_subjects: ["hdr.>"]}
EOF
"$BIN" -c "$T/hdr-produce.yaml" <"$T/hdr.jsonl" >"$T/hdr-produce.log" 2>&1
check "max_meta_keys: stream HDR holds 20 messages" test "$(jsz HDR | cut -d' ' -f1)" = 20
cat >"$T/hdr.yaml" <<EOF
input:
  nats:
    urls: [$URL]
    subjects: ["hdr.>"]
    max_meta_keys: 30
    jetstream: {stream: HDR, durable: H}
output: {file: {path: "$T/hdr-out.jsonl"}}
dead_letter: {file: {path: "$T/hdr-dead.jsonl"}}
EOF
start_bg "$BIN" -c "$T/hdr.yaml" --stats "$T/hdr.stats" >"$T/hdr.log" 2>&1
HP=$BG_PID
wait_until '[ "$(jsz HDR H | cut -d" " -f2)" = 20 ]' 60 || echo "H did not ack everything in time"
stop_bg "$HP"
check "max_meta_keys: SIGTERM exit 0" test $? = 0
check "max_meta_keys: 19 messages out, message 7 dead-lettered as invalid_input (and acked)" \
    python3 tests/tools/check_max_meta_keys_drop.py "$T/hdr-out.jsonl" "$T/hdr-dead.jsonl" "$T/hdr.stats" \
    "nats subject hdr.v (stream HDR sequence 8)"

# ---- negative PubAcks: the batch fails (max_retries 0) naming the reason ----
# a subject no stream stores (the server answers "no responders") and a
# message stored in another stream than the expected `stream`
for c in "nostream:none.x:NOSUCH:no JetStream stream stores the subject" \
    "otherstream:hdr.x:BAD:expected stream does not match"; do
    IFS=: read -r name subj stream why <<<"$c"
    printf 'input: {stdin: {}}\noutput:\n  nats: {urls: [%s], subject: "%s", jetstream: true, stream: %s, max_retries: 0}\n' \
        "$URL" "$subj" "$stream" >"$T/nack-$name.yaml"
    head -3 "$T/hdr.jsonl" | "$BIN" -c "$T/nack-$name.yaml" >"$T/nack-$name.log" 2>&1
    check "negative PubAck ($name): exit 1" test $? = 1
    check "negative PubAck ($name): the error says \"$why\"" grep -q "not delivered: $why" "$T/nack-$name.log"
done
check "negative PubAck: HDR still holds 20 messages" test "$(jsz HDR | cut -d' ' -f1)" = 20

# ---- SIGTERM with the server gone and max_retries -1: the output gives up ----
# (issue 9: submit retried forever and SIGTERM never ended the run)
mkfifo "$T/stop.fifo"
cat >"$T/stop.yaml" <<EOF
input: {stdin: {}}
pipeline: {batch_size: 8}
output:
  nats: {urls: [$URL], subject: "stop.x", jetstream: true, stream: STOP, create_stream: true,
         stream_subjects: ["stop.>"], ack_timeout: 1s, reconnect_wait: 100ms}
EOF
start_bg_stdin "$T/stop.fifo" "$BIN" -c "$T/stop.yaml" >"$T/stop.log" 2>&1
SP=$BG_PID
exec 5>"$T/stop.fifo"
head -5 "$T/hdr.jsonl" >&5
wait_until '[ "$(jsz STOP | cut -d" " -f1)" = 5 ]' 30
kill -9 "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null
head -20 "$T/hdr.jsonl" >&5
wait_until 'grep -q "not delivered" "$T/stop.log"' 30 || echo "the output never retried"
kill -TERM "$SP"
if wait_until "! kill -0 $SP 2>/dev/null" 60; then
    ok "server down, max_retries -1: SIGTERM ends the run"
else
    bad "server down, max_retries -1: SIGTERM ends the run"
fi
exec 5>&-
wait "$SP"
check "server down: exit 1 (the undelivered input stays unacknowledged)" test $? = 1
check "server down: the failure names the stop" grep -q "stopping while a batch" "$T/stop.log"
finish
