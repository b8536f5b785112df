#!/usr/bin/env bash
# The JSON Lines envelope's rules on hostile lines (issue 9, items 10 and 11):
# text that is not UTF-8 (lone surrogate escapes, overlong/CESU forms) is
# dropped as invalid_input with its line number instead of merging keys;
# more metadata entries than max_meta_keys (default 10,000) are invalid_input;
# a line of 200,000 keys (allowed by max_meta_keys) decodes whole and in order.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/lib.sh

config() { # input options
    printf 'input:\n  stdin: {%s}\noutput:\n  stdout: {}\ndead_letter:\n  file: {path: %s}\n' \
        "$1" "$T/dead.jsonl" >"$T/c.yaml"
}

# 1. not UTF-8: rejected, never repaired into one key
config ""
{
    printf '{"payload":1,"meta":{"a":"x"}}\n'
    printf '{"payload":2,"meta":{"a\\ud800":"1","a\\ud801":"2"}}\n'
    printf '{"payload":3,"meta":{"k\xed\xa0\x80\xed\xb0\x80":"1","k\xc0\x80":"2"}}\n'
    printf '{"payload":4,"meta":{"b":"\xf0\x9f\x98\x80"}}\n'
} >"$T/utf8.jsonl"
"$BIN" -c "$T/c.yaml" --stats "$T/s.json" <"$T/utf8.jsonl" >"$T/out" 2>"$T/err"
rc=$?
check_sh "not UTF-8: exit 0" "[ $rc = 0 ]"
check_sh "not UTF-8: valid lines pass" "[ \$(wc -l <'$T/out') = 2 ] && grep -q '\"payload\":4' '$T/out'"
check_sh "not UTF-8: two invalid_input drops" "grep -q '\"invalid_input\":2' '$T/s.json'"
check_sh "not UTF-8: logged with line and column" \
    "grep -q 'line 2: invalid UTF-8 (or a lone surrogate escape) at column' '$T/err' && grep -q 'line 3: invalid UTF-8' '$T/err'"
check_sh "not UTF-8: the raw lines are dead-lettered" "[ \$(wc -l <'$T/dead.jsonl') = 2 ]"

# 2. max_meta_keys: 10,000 by default
python3 - "$T/keys.jsonl" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for n in (10000, 10001, 4):
        f.write(json.dumps({"payload": n, "meta": {"k%d" % i: "v" for i in range(n)}}) + "\n")
PY
"$BIN" -c "$T/c.yaml" --stats "$T/s.json" <"$T/keys.jsonl" >"$T/out" 2>"$T/err"
check_sh "10,000 keys pass, 10,001 do not" \
    "[ \$(wc -l <'$T/out') = 2 ] && grep -q '\"payload\":10000,' '$T/out' && grep -q '\"invalid_input\":1' '$T/s.json'"
check_sh "too many keys logged" \
    "grep -q 'line 2: meta has 10001 keys, more than max_meta_keys (10000)' '$T/err'"
config "max_meta_keys: 3"
"$BIN" -c "$T/c.yaml" --stats "$T/s.json" <"$T/keys.jsonl" >"$T/out" 2>"$T/err"
check_sh "max_meta_keys: 3 drops all three lines" "grep -q '\"invalid_input\":3' '$T/s.json'"

# 3. many keys decode in linear time (200,000 took 16 s when it was quadratic)
config "max_meta_keys: 300000"
python3 -c '
import json
print(json.dumps({"payload": 1, "meta": {"k%d" % i: "v%d" % i for i in range(200000)}}))
' >"$T/big.jsonl"
"$BIN" -c "$T/c.yaml" <"$T/big.jsonl" >"$T/out" 2>"$T/err"
check_sh "200,000 keys decode whole and in order" "python3 -c '
import json, sys
m = json.loads(open(sys.argv[1]).read())[\"meta\"]
assert list(m) == [\"k%d\" % i for i in range(200000)], len(m)
assert m[\"k199999\"] == \"v199999\"
' '$T/out'"
finish
