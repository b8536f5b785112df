#!/usr/bin/env bash
# `make bench`: the issue-4 measurements in one command. Each figure is the
# median of RUNS runs (default 3) on this machine; results go to stdout as a
# table and to bench/results.json. Environment: RUNS, MESSAGES (in-process,
# default 1000000), NAIVE_MESSAGES (default 20000), E2E_MESSAGES (default 1000000).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/tagproc
RUNS=${RUNS:-3}
MESSAGES=${MESSAGES:-1000000}
NAIVE_MESSAGES=${NAIVE_MESSAGES:-20000}
E2E_MESSAGES=${E2E_MESSAGES:-1000000}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
results=bench/results.jsonl
: >"$results"

bench() { # label, args...
    local label=$1
    shift
    for _ in $(seq 1 "$RUNS"); do
        "$BIN" bench --json "$@" | tail -n 1 | python3 -c \
            'import json,sys; d=json.load(sys.stdin); d["label"]=sys.argv[1]; print(json.dumps(d))' "$label" >>"$results"
    done
}

echo "in-process benchmarks (median of $RUNS runs)..." >&2
bench seed-naive --workload seed --mode naive --messages "$NAIVE_MESSAGES"
bench seed-pooled --workload seed --mode pooled --messages "$MESSAGES"
bench seed-pooled-2t --workload seed --mode pooled --messages "$MESSAGES" --threads 2
bench production --workload production --mode pooled --messages "$MESSAGES"
bench mapping --workload mapping --mode pooled --messages "$((MESSAGES / 4))"
bench passthrough --workload passthrough --messages "$MESSAGES"
bench marshal --workload marshal --messages "$MESSAGES"
bench minimal --workload minimal --messages "$MESSAGES"

echo "end-to-end: $E2E_MESSAGES seed messages, JSONL file -> tagproc -c -> JSONL file..." >&2
cat >"$OUT/gen.yaml" <<YAML
input:
  simulator: {nodes: 42, count: $E2E_MESSAGES, timestamps: fixed, metadata: short}
output:
  file: {path: "$OUT/in.jsonl"}
YAML
"$BIN" -c "$OUT/gen.yaml"
for threads in 1 2; do
    python3 bench/e2e_config.py "$OUT/in.jsonl" "$OUT/out.jsonl" "$threads" >"$OUT/e2e-$threads.yaml"
    for _ in $(seq 1 "$RUNS"); do
        /usr/bin/time -f '%e %U %S %M' -o "$OUT/time" "$BIN" -c "$OUT/e2e-$threads.yaml" \
            --stats "$OUT/stats.json"
        python3 - "$OUT/time" "$OUT/stats.json" "$threads" >>"$results" <<'PY'
import json, sys
wall, user, sys_, rss = open(sys.argv[1]).read().split()[-4:]
s = json.load(open(sys.argv[2]))
n = s["received"]
print(json.dumps({"label": "e2e-%st" % sys.argv[3], "workload": "seed", "mode": "pooled",
                  "threads": int(sys.argv[3]), "messages": n, "processed": s["processed"],
                  "msgs_per_sec": n / float(wall),
                  "cpu_us_per_msg": (float(user) + float(sys_)) * 1e6 / n,
                  "compilations": s["programs_compiled"], "vms_created": s["vms_created"],
                  "peak_rss_kb": int(rss)}))
PY
    done
done
python3 bench/report.py "$results"
