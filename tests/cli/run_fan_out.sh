#!/usr/bin/env bash
# Fan-out accounting (issue 9, item 8): an input whose two conditions each
# return 2,000 children is one invalid_value drop (max_fan_out, default 1000),
# not thousands of js_memory drops and dead-letter copies; an input whose
# children all fail is counted and dead-lettered once, the record naming how
# many of its messages were lost. Inputs around them are untouched.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/lib.sh

config() { # extra tag_processor options
    cat >"$T/c.yaml" <<YAML
input:
  stdin: {}
pipeline:
  processors:
    - tag_processor:
        $1
        defaults: |
          msg.meta.location_path = "e.site";
          msg.meta.data_contract = "_historian";
          msg.meta.tag_name = "t";
          return msg;
        conditions:
          - if: msg.meta.mode === "wide"
            then: |
              return Array.from({length: 2000}, (_, i) => ({payload: i, meta: msg.meta}));
          - if: msg.meta.mode === "wide"
            then: |
              return Array.from({length: 2000}, (_, i) => ({payload: i, meta: msg.meta}));
          - if: msg.meta.mode === "five"
            then: |
              return [1, 2, 3, 4, 5].map((i) => ({payload: i, meta: {...msg.meta, mode: "bad"}}));
          - if: msg.meta.mode === "bad"
            then: throw new Error("child " + msg.payload);
output:
  stdout: {}
dead_letter:
  file: {path: $T/dead.jsonl}
YAML
}

printf '%s\n' '{"payload":1}' '{"payload":2,"meta":{"mode":"wide"}}' \
    '{"payload":3,"meta":{"mode":"five"}}' '{"payload":4}' >"$T/in.jsonl"

for opt in "" "max_fan_out: 5000"; do
    config "$opt"
    rm -f "$T/dead.jsonl"
    "$BIN" -c "$T/c.yaml" --stats "$T/s.json" <"$T/in.jsonl" >"$T/out" 2>"$T/err"
    rc=$?
    name=${opt:-default}
    check_sh "$name: exit 0" "[ $rc = 0 ]"
    check_sh "$name: the plain inputs pass" "[ \$(wc -l <'$T/out') = 2 ]"
    check_sh "$name: one invalid_value and one js_error, nothing else" \
        "grep -q '\"invalid_value\":1,' '$T/s.json' && grep -q '\"js_error\":1,' '$T/s.json' &&
         grep -q '\"js_memory\":0,' '$T/s.json' && grep -q '\"filtered\":0,' '$T/s.json'"
    check_sh "$name: one dead letter per input" "[ \$(wc -l <'$T/dead.jsonl') = 2 ]"
    check_sh "$name: the bound is named" "grep -q 'more than max_fan_out' '$T/dead.jsonl'"
    check_sh "$name: the lost children are counted" \
        "grep -q '\[5 messages of this input lost: 5 js_error\]' '$T/dead.jsonl'"
done
check_sh "the bound is hit at the second condition with max_fan_out 5000" \
    "grep -q '\"tagproc_drop_stage\":\"conditions\[1\].then\"' '$T/dead.jsonl'"
finish
