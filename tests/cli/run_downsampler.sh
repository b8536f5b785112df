#!/usr/bin/env bash
# The downsampler on many threads (issue 12.5): its per-topic state follows
# key routing, so 100,000 points of 20 topics (random walks and mode strings)
# give, byte for byte, the threads: 1 result with threads 2 and 4 — by the
# natural key (umh_topic) and behind a tag_processor (routed by the
# simulator's opcua_node_id). A routing key that splits a topic is warned of.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/lib.sh
python3 -c '
import random
r = random.Random(5)
level = [50.0] * 20
modes = ["AUTO", "MANUAL", "IDLE"]
for i in range(100000):
    k = r.randrange(20)
    t = 1700000000000 + i * 10
    if k < 16:
        level[k] += r.uniform(-0.4, 0.4)
        v = "%.3f" % level[k]
    else:
        v = "\"%s\"" % modes[r.randrange(3)] if r.random() < 0.05 else "\"AUTO\""
    print("{\"payload\":{\"timestamp_ms\":%d,\"value\":%s},\"meta\":{\"umh_topic\":\"umh.v1.e.s._historian.t%d\"}}" % (t, v, k))
' >"$T/in"
points() { # threads
    cat <<YAML
input:
  file: {path: $T/in}
pipeline:
  threads: $1
  batch_size: 64
  processors:
    - downsampler:
        default:
          deadband: {threshold: 1, max_time: 5s}
        overrides:
          - pattern: "t1?"
            swinging_door: {threshold: 0.5}
output:
  file: {path: $T/points$1}
YAML
}
simulated() { # threads, extra pipeline line
    cat <<YAML
input:
  simulator: {nodes: 36, count: 60000, timestamps: fixed}
pipeline:
  threads: $1
  $2
  processors:
    - tag_processor:
        defaults: |
          msg.meta.location_path = "e.s";
          msg.meta.data_contract = "_historian";
          msg.meta.tag_name = msg.meta.opcua_tag_name;
          return msg;
    - downsampler:
        default: {swinging_door: {threshold: 0.05}}
output:
  file: {path: $T/sim$1}
YAML
}
for t in 1 2 4; do
    points "$t" >"$T/p$t.yaml"
    simulated "$t" "batch_size: 32" >"$T/s$t.yaml"
    "$BIN" -c "$T/p$t.yaml" 2>"$T/p$t.err" || echo "points $t failed" >>"$T/errors"
    "$BIN" -c "$T/s$t.yaml" 2>"$T/s$t.err" || echo "simulated $t failed" >>"$T/errors"
done
check_sh "every run exits 0" "[ ! -s '$T/errors' ]"
n=$(lines "$T/points1")
check_sh "points: some kept, most filtered ($n of 100000)" "[ $n -gt 1000 ] && [ $n -lt 50000 ]"
check_sh "points: the rest counted as filtered" "grep -q 'dropped=$((100000 - n)) (filtered=$((100000 - n)))' '$T/p1.err'"
check_sh "points: both algorithms ran" \
    "grep -q 'swinging_door(threshold=0.5,max_time=5s)' '$T/points1' && grep -q 'deadband(threshold=1,max_time=5s)' '$T/points1'"
check_sh "points: threads 2 = threads 1" "cmp '$T/points1' '$T/points2'"
check_sh "points: threads 4 = threads 1" "cmp '$T/points1' '$T/points4'"
check_sh "points: no split-state warning" "! grep -q 'more than one worker' '$T/p2.err' '$T/p4.err'"
n=$(lines "$T/sim1")
check_sh "simulated: some kept ($n of 60000)" "[ $n -gt 100 ] && [ $n -lt 60000 ]"
check_sh "simulated: threads 2 = threads 1" "cmp '$T/sim1' '$T/sim2'"
check_sh "simulated: threads 4 = threads 1" "cmp '$T/sim1' '$T/sim4'"
# a routing key that does not determine the topic: one warning per split topic
simulated 2 "key: '\${! meta(\"timestamp_ms\") }'" >"$T/split.yaml"
"$BIN" -c "$T/split.yaml" 2>"$T/split.err"
check_sh "split routing: warned, naming the topic" \
    "grep -q 'downsampler: topic umh.v1.e.s._historian.[A-Za-z_0-9]* is processed by more than one worker' '$T/split.err'"
finish
