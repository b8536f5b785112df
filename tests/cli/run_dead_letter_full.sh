#!/usr/bin/env bash
# Dead letter that cannot be written (issue 9, item 4): a dead letter on a
# full disk (/dev/full) is treated like an output failure: a few attempts,
# then tagproc exits 1 naming the dead letter, instead of losing the record
# and exiting 0. The same config with a writable dead letter exits 0 and
# holds exactly the dropped message.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/lib.sh

config() { # DEAD_LETTER_PATH
    cat >"$T/c.yaml" <<YAML
input: {stdin: {}}
pipeline:
  processors:
    - tag_processor:
        defaults: |
          if (msg.payload === 3) throw new Error("bad value");
          msg.meta.location_path = "e.site";
          msg.meta.data_contract = "_historian";
          msg.meta.tag_name = "t";
          return msg;
output:
  max_in_flight: 4
  file: {path: "$T/out.jsonl"}
dead_letter: {file: {path: "$1", mode: append}}
YAML
}
for i in 1 2 3 4 5; do echo "{\"payload\": $i, \"meta\": {}}"; done >"$T/in.jsonl"

config /dev/full
"$BIN" -c "$T/c.yaml" <"$T/in.jsonl" >"$T/run.out" 2>"$T/run.err"
check "dead letter on a full disk: exit 1" test $? = 1
check "dead letter on a full disk: the error names the dead letter" \
    grep -q "dead letter: cannot write the record of a js_error drop" "$T/run.err"

config "$T/dead.jsonl"
"$BIN" -c "$T/c.yaml" <"$T/in.jsonl" >"$T/run.out" 2>"$T/run.err"
check "writable dead letter: exit 0" test $? = 0
check "writable dead letter: one record, the dropped message" \
    test "$(grep -c '"payload":3' "$T/dead.jsonl")" = 1 -a "$(lines "$T/dead.jsonl")" = 1
check "writable dead letter: the other 4 messages in the output" test "$(lines "$T/out.jsonl")" = 4
finish
