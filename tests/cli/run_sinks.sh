#!/usr/bin/env bash
# Whole records on every sink: output and dead letter both on stdout (two
# threads, records larger than a pipe's atomic write) give only whole lines;
# a file output on a full disk (a small tmpfs, or a file size limit where
# mounting is not allowed) fails with exit 1 and leaves no torn last record;
# append mode after a torn tail does not glue the next record onto it.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
MNT=
trap '[ -n "$MNT" ] && umount "$MNT"; rm -rf "$T"' EXIT
. tests/lib.sh

# Every line of a file parses as JSON and the file ends with a line end.
cat >"$T/whole.py" <<'PY'
import json, sys
data = open(sys.argv[1], "rb").read()
assert data == b"" or data.endswith(b"\n"), "torn last record: %r" % data[-80:]
lines = data.split(b"\n")[:-1] if data else []
for i, l in enumerate(lines):
    json.loads(l)
print(len(lines), "whole records")
if len(sys.argv) > 2:
    assert len(lines) == int(sys.argv[2]), (len(lines), sys.argv[2])
PY

# 1. output and dead letter on stdout: every third message is dead-lettered.
python3 -c '
pad = "x" * 3000
for i in range(3000):
    print("{\"payload\":%d,\"meta\":{\"pad\":\"%s\"}}" % (i, pad))' >"$T/in.jsonl"
cat >"$T/both.yaml" <<'YAML'
pipeline:
  threads: 2
  batch_size: 4
  processors:
    - nodered_js:
        code: |
          if (msg.payload % 3 === 0) throw new Error("dead letter " + msg.payload);
          return msg;
output:
  stdout: {}
dead_letter:
  stdout: {}
YAML
"$BIN" -c "$T/both.yaml" <"$T/in.jsonl" 2>"$T/both.err" | cat >"$T/both.out"
check_sh "output + dead letter on stdout: only whole records" \
    "python3 '$T/whole.py' '$T/both.out' 3000"
check_sh "dead-letter records are there" \
    "[ \$(grep -c tagproc_drop_reason '$T/both.out') = 1000 ]"

# 2. a full disk: exit 1, no torn record; the failed batch is cut back.
python3 -c '
for i in range(4000):
    print("{\"payload\":%d,\"meta\":{\"pad\":\"%s\"}}" % (i, "y" * 150))' >"$T/many.jsonl"
DIR=$T/small
mkdir "$DIR"
LIMIT=
if mount -t tmpfs -o size=256k tmpfs "$DIR" 2>/dev/null; then
    MNT=$DIR
else
    LIMIT="ulimit -f 256;" # 256 KiB: writes beyond fail with EFBIG like a full disk
fi
printf 'pipeline:\n  batch_size: 7\noutput:\n  file: {path: %s/out.jsonl}\n' "$DIR" >"$T/full.yaml"
bash -c "$LIMIT exec '$BIN' -c '$T/full.yaml' --stats '$T/full.json'" <"$T/many.jsonl" 2>"$T/full.err"
rc=$?
check_sh "full disk: exit 1" "[ $rc = 1 ] || { echo rc=$rc; tail -3 '$T/full.err'; exit 1; }"
check_sh "full disk: error names the file" "grep -q 'out.jsonl: write: ' '$T/full.err'"
check_sh "full disk: no torn record" "python3 '$T/whole.py' '$DIR/out.jsonl'"
check_sh "full disk: every record written was whole and counted as processed" \
    "python3 '$T/whole.py' '$DIR/out.jsonl' \$(python3 -c 'import json; print(json.load(open(\"$T/full.json\"))[\"processed\"])')"

# 3. append after a torn tail (an earlier crash): the tail goes, nothing glues.
printf '{"payload":1}\n{"payload":2}\n{"payl' >"$T/app.jsonl"
printf 'output:\n  file: {path: %s/app.jsonl, mode: append}\n' "$T" >"$T/app.yaml"
printf '{"payload":3}\n{"payload":4}\n' | "$BIN" -c "$T/app.yaml" 2>"$T/app.err"
rc=$?
check_sh "append after a torn tail: exit 0" "[ $rc = 0 ]"
check_sh "append after a torn tail: whole records only" "python3 '$T/whole.py' '$T/app.jsonl' 4"
check_sh "append after a torn tail: logged" "grep -q 'removed a partial last record' '$T/app.err'"

finish
