#!/usr/bin/env bash
# Node-RED function code in nodered_js (issue 12.6): node.log/warn/error go
# to the tagproc log at their level with the message's metadata; context,
# flow and global get/set keep values in the processor's store (separate key
# spaces, not cache's; set(k, undefined) deletes); per-key flow state is
# exact on 2 threads (key routing); lint warns of msg.topic, `return [[...]]`
# and node.send at their positions, and `-c` reports the same.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/lib.sh

cat >"$T/log.yaml" <<'YAML'
input:
  stdin: {}
pipeline:
  threads: 1
  processors:
    - nodered_js:
        code: |
          const n = (flow.get("count") ?? 0) + 1;
          flow.set("count", n);
          global.set("last", msg.payload);
          context.set("seen", {n: n});
          if (n === 1) node.log("first", n);
          if (n === 2) node.warn("second", {n: n});
          if (n === 3) {
            node.error("third");
            flow.set("tmp", 1);
            flow.set("tmp", undefined);
          }
          msg.payload = {n: n, last: global.get("last"), seen: context.get("seen"),
                         tmp: flow.get("tmp") === undefined, cache: cache.exists("count"),
                         other: global.get("count") === undefined};
          return msg;
output:
  stdout: {}
YAML
printf '%s\n' '{"payload":10,"meta":{"machine":"m1"}}' '{"payload":20,"meta":{"machine":"m2","x":"y"}}' \
    '{"payload":30}' | "$BIN" -c "$T/log.yaml" >"$T/out" 2>"$T/err"
check_sh "runs: 3 messages" "[ \$(wc -l <'$T/out') = 3 ]"
check_sh "flow counts, global and context hold values" \
    "sed -n 3p '$T/out' | grep -qF '{\"payload\":{\"n\":3,\"last\":30,\"seen\":{\"n\":3},\"tmp\":true,\"cache\":false,\"other\":true}'"
check_sh "node.log: info with the message's metadata" \
    "grep -qE ' info  \[processor=pipeline.processors\[0\].nodered_js stage=code rule=code\] first 1; meta=\{\"machine\":\"m1\"\}$' '$T/err'"
check_sh "node.warn: warn, objects as JSON" \
    "grep -qE ' warn  \[processor=.*\] second \{\"n\":2\}; meta=\{\"machine\":\"m2\",\"x\":\"y\"\}$' '$T/err'"
check_sh "node.error: error, empty metadata" "grep -qE ' error \[processor=.*\] third; meta=\{\}$' '$T/err'"
check_sh "no message dropped" "grep -q 'dropped=0' '$T/err'"

# per-key state in flow, 2 threads: key routing keeps each machine on one worker
python3 -c '
for i in range(20000):
    print("{\"payload\":1,\"meta\":{\"machine\":\"m%d\"}}" % (i % 7))
' >"$T/in"
cat >"$T/keyed.yaml" <<YAML
input:
  file: {path: $T/in}
pipeline:
  threads: 2
  batch_size: 16
  key: '\${! meta("machine") }'
  processors:
    - nodered_js:
        code: |
          const k = "n." + msg.meta.machine;
          flow.set(k, (flow.get(k) ?? 0) + msg.payload);
          msg.payload = flow.get(k);
          return msg;
output:
  file: {path: $T/keyed}
YAML
"$BIN" -c "$T/keyed.yaml" 2>"$T/keyed.err"
check_sh "per-key counters exact on 2 threads (every message sees its own count)" "python3 -c '
import collections, json, sys
seen = collections.Counter()
for line in open(sys.argv[1]):
    m = json.loads(line)
    seen[m[\"meta\"][\"machine\"]] += 1
    assert m[\"payload\"] == seen[m[\"meta\"][\"machine\"]], line
assert sum(seen.values()) == 20000
' '$T/keyed'"

# lint: Node-RED habits without meaning here, each at its position
cat >"$T/lint.yaml" <<'YAML'
input:
  stdin: {}
pipeline:
  processors:
    - nodered_js:
        code: |
          msg.topic = "line/1";
          if (msg.payload > 1) {
            node.send(msg);
            return [[msg], [msg]];
          }
          return msg;
output:
  stdout: {}
YAML
"$BIN" lint "$T/lint.yaml" >"$T/lint" 2>"$T/lint.err"
rc=$?
check_sh "lint: warnings only, exit 0" "[ $rc = 0 ] && grep -q '0 errors, 3 warnings' '$T/lint.err'"
check_sh "lint: msg.topic at 7:11" "grep -q 'lint.yaml:7:11: warning: .*msg.topic has no meaning in tagproc' '$T/lint'"
check_sh "lint: node.send at 9:13" "grep -q 'lint.yaml:9:13: warning: .*node.send is not available' '$T/lint'"
check_sh "lint: return [[...]] at 10:13" "grep -q 'lint.yaml:10:13: warning: .*return \[\[...\]\]. is Node-RED.s multiple outputs' '$T/lint'"
"$BIN" -c "$T/lint.yaml" </dev/null >/dev/null 2>"$T/run.err"
check_sh "-c: the same three warnings" \
    "diff <(sed 's/^/lint: /' '$T/lint') <(grep -o 'lint: .*' '$T/run.err')"
finish
