#!/usr/bin/env bash
# End-to-end checks of the tagproc command line: pass-through with a bad input
# line (logged with its line number, counted in --stats), config errors with
# FILE:LINE:COL and non-zero exit, --help/--version, SIGTERM drain (exit 0).
set -u
BIN=${1:-build/tagproc}
BIN=$(realpath "$BIN")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/lib.sh

# 1. pass-through with a malformed line
printf '{"payload":1}\nnot json\n{"payload":2,"meta":{"a":"b"}}\n' |
    "$BIN" -c examples/stdin-passthrough.yaml --stats "$T/s.json" >"$T/out" 2>"$T/err"
rc=$?
check_sh "passthrough exit 0" "[ $rc = 0 ]"
check_sh "passthrough two envelopes" "[ \$(wc -l <'$T/out') = 2 ]"
check_sh "passthrough first" "grep -qx '{\"payload\":1,\"meta\":{}}' '$T/out'"
check_sh "passthrough second keeps meta" "grep -qx '{\"payload\":2,\"meta\":{\"a\":\"b\"}}' '$T/out'"
check_sh "bad line logged with its number" "grep -q 'line 2' '$T/err'"
check_sh "stats count the bad line" "grep -q '\"invalid_input\":1' '$T/s.json'"
check_sh "stats received/processed" "grep -q '\"processed\":2' '$T/s.json'"

# 2. big numbers and unicode survive byte-for-byte
printf '%s\n' '{"payload":12345678901234567890,"meta":{"k":"é ✓"}}' |
    "$BIN" -c examples/stdin-passthrough.yaml >"$T/out2" 2>"$T/err2"
check_sh "big number kept" "grep -q '\"payload\":12345678901234567890' '$T/out2'"
check_sh "unicode kept" "grep -q 'é ✓' '$T/out2'"

# 3. config errors
cat >"$T/unknown.yaml" <<'YAML'
input:
  stdin: {}
pipeline:
  thread: 2
YAML
"$BIN" -c "$T/unknown.yaml" </dev/null >/dev/null 2>"$T/e1"
rc=$?
check_sh "unknown key exits non-zero" "[ $rc != 0 ]"
check_sh "unknown key position and valid keys" "grep -q 'unknown.yaml:4:3: pipeline.thread' '$T/e1' && grep -q 'threads' '$T/e1'"

cat >"$T/type.yaml" <<'YAML'
pipeline:
  threads: many
YAML
"$BIN" -c "$T/type.yaml" </dev/null >/dev/null 2>"$T/e2"
rc=$?
check_sh "wrong type exits non-zero" "[ $rc != 0 ]"
check_sh "wrong type position" "grep -q 'type.yaml:2:12: pipeline.threads' '$T/e2'"

printf 'input:\n  stdin: {}\n output:\n  stdout: {}\n' >"$T/indent.yaml"
"$BIN" -c "$T/indent.yaml" </dev/null >/dev/null 2>"$T/e3"
rc=$?
check_sh "bad indentation exits non-zero" "[ $rc != 0 ]"
check_sh "bad indentation position" "grep -Eq 'indent.yaml:[0-9]+:[0-9]+:' '$T/e3'"

cat >"$T/plugin.yaml" <<'YAML'
input:
  stdinn: {}
YAML
"$BIN" -c "$T/plugin.yaml" </dev/null >/dev/null 2>"$T/e4"
rc=$?
check_sh "unknown plugin" "[ $rc != 0 ] && grep -q 'plugin.yaml:2:3: input.stdinn: unknown input' '$T/e4'"

"$BIN" -c "$T/does-not-exist.yaml" </dev/null >/dev/null 2>"$T/e5"
rc=$?
check_sh "missing config file" "[ $rc != 0 ] && grep -q 'does-not-exist.yaml' '$T/e5'"

# 4. help / version
check_sh "--help" "'$BIN' --help | grep -q 'usage: tagproc'"
check_sh "--version" "'$BIN' --version | grep -q '^tagproc '"

# 5. SIGTERM drains and exits 0: an endless slow simulator, stopped once output appeared
cat >"$T/endless.yaml" <<'YAML'
input:
  simulator:
    rate: 200
output:
  stdout: {}
YAML
"$BIN" -c "$T/endless.yaml" --stats "$T/s2.json" >"$T/out3" 2>"$T/err3" &
pid=$!
for _ in $(seq 1 1200); do # up to 60 s on a loaded machine
    [ -s "$T/out3" ] && break
    sleep 0.05
done
kill -TERM $pid
wait $pid
rc=$?
check_sh "SIGTERM exit 0" "[ $rc = 0 ]"
check_sh "SIGTERM: every received message was output" \
    "python3 -c 'import json,sys; s=json.load(open(\"$T/s2.json\")); n=sum(1 for _ in open(\"$T/out3\")); sys.exit(0 if s[\"received\"]==s[\"processed\"]==n and n>0 else 1)'"

# 6. threads: 4 gives byte-identical output to threads: 1 (the simulator example, fixed clock)
for t in 1 4; do
    sed -e "s/threads: 2/threads: $t/" -e 's/count: 420/count: 20000\n    timestamps: fixed/' \
        examples/opcua-simulator.yaml >"$T/sim$t.yaml"
    "$BIN" -c "$T/sim$t.yaml" --stats "$T/sim$t.json" >"$T/sim$t.out" 2>"$T/sim$t.err"
done
check_sh "simulator example: 20000 UNS messages" "[ \$(grep -c '\"topic\":\"umh.v1.' '$T/sim1.out') = 20000 ]"
check_sh "threads 4 output identical to threads 1" "cmp '$T/sim1.out' '$T/sim4.out'"
check_sh "4 workers: one VM per worker, 8 snippets compiled once" \
    "grep -q '\"vms_created\":4' '$T/sim4.json' && grep -q '\"programs_compiled\":8' '$T/sim4.json'"

# 7. dead letter: every non-filtered drop, as the original input plus the reason
cat >"$T/dl.yaml" <<YAML
input:
  stdin: {}
pipeline:
  processors:
    - tag_processor:
        defaults: |
          if (msg.payload === "boom") throw new Error("bad reading");
          if (msg.payload === "skip") return null;
          msg.meta.location_path = "enterprise.plant1";
          msg.meta.data_contract = msg.meta.dc || "_historian";
          msg.meta.tag_name = "t";
          return msg;
output:
  stdout: {}
dead_letter:
  file: {path: "$T/dead.jsonl"}
YAML
printf '%s\n' '{"payload":1,"meta":{"n":"1"}}' '{"payload":"boom","meta":{"n":"2"}}' \
    '{"payload":"skip","meta":{"n":"3"}}' '{"payload":4,"meta":{"n":"4","dc":"historian"}}' 'oops' |
    "$BIN" -c "$T/dl.yaml" --stats "$T/dl.json" >"$T/dl.out" 2>"$T/dl.err"
check_sh "dead letter: one good output" "[ \$(wc -l <'$T/dl.out') = 1 ]"
check_sh "dead letter: three records (js_error, invalid_topic, invalid_input), not the filtered one" \
    "[ \$(wc -l <'$T/dead.jsonl') = 3 ]"
check_sh "dead letter: js_error record keeps the input and names stage and error" \
    "grep '\"payload\":\"boom\"' '$T/dead.jsonl' | grep '\"n\":\"2\"' | grep '\"tagproc_drop_reason\":\"js_error\"' | grep '\"tagproc_drop_stage\":\"defaults\"' | grep -q 'bad reading'"
check_sh "dead letter: invalid_topic record" \
    "grep '\"n\":\"4\"' '$T/dead.jsonl' | grep -q '\"tagproc_drop_reason\":\"invalid_topic\"'"
check_sh "dead letter: invalid_input record keeps the raw line and its number" \
    "grep '\"tagproc_drop_reason\":\"invalid_input\"' '$T/dead.jsonl' | grep '\"payload\":\"oops\"' | grep -q 'line 5'"
check_sh "dead letter: js error logged with its line and the metadata" \
    "grep 'js_error' '$T/dl.err' | grep -q '\"n\":\"2\"'"

finish
