#!/usr/bin/env bash
# Key routing (issue 12.4): a stateful "previous value" rule over 200,000
# messages of 10 keys gives, byte for byte, the threads: 1 result with
# threads 2 and 4 — by the natural key (umh_topic) and by `pipeline.key`.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/lib.sh
python3 -c '
import random
r = random.Random(12)
for i in range(200000):
    k = r.randrange(10)
    print("{\"payload\":%d,\"meta\":{\"n\":\"m%d\",\"umh_topic\":\"umh.v1.e.s._raw.k%d\"}}" % (r.randrange(1000), k, k))
' >"$T/in"
config() { # threads, key line
    cat <<YAML
input:
  file:
    path: $T/in
pipeline:
  threads: $1
  $2
  processors:
    - nodered_js:
        code: |
          const p = cache.get(msg.meta.n);
          cache.set(msg.meta.n, msg.payload);
          msg.payload = msg.payload - (p ?? msg.payload);
          return msg;
output:
  file:
    path: $T/out_\$3
YAML
}
for t in 1 2 4; do
    config "$t" "batch_size: 64" | sed "s/\\\$3/natural$t/" >"$T/n$t.yaml"
    config "$t" "key: '\${! meta(\"n\") }'" | sed "s/\\\$3/key$t/" >"$T/k$t.yaml"
    "$BIN" -c "$T/n$t.yaml" 2>"$T/n$t.err" || echo "natural $t failed" >>"$T/errors"
    "$BIN" -c "$T/k$t.yaml" 2>"$T/k$t.err" || echo "key $t failed" >>"$T/errors"
done
check_sh "every run exits 0" "[ ! -s '$T/errors' ]"
check_sh "200000 results" "[ \$(wc -l <'$T/out_natural1') = 200000 ]"
check_sh "deltas are not all zero" "grep -vq '\"payload\":0,' '$T/out_natural1'"
check_sh "natural key: threads 2 = threads 1" "cmp '$T/out_natural1' '$T/out_natural2'"
check_sh "natural key: threads 4 = threads 1" "cmp '$T/out_natural1' '$T/out_natural4'"
check_sh "pipeline.key: threads 1 = natural key" "cmp '$T/out_natural1' '$T/out_key1'"
check_sh "pipeline.key: threads 2 = threads 1" "cmp '$T/out_key1' '$T/out_key2'"
check_sh "pipeline.key: threads 4 = threads 1" "cmp '$T/out_key1' '$T/out_key4'"
finish
