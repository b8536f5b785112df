#!/usr/bin/env bash
# Cost of the Topic Browser on the end-to-end seed path (JSONL file ->
# tagproc -c -> JSONL file, bench/e2e_config.py), all variants in one run,
# interleaved, RUNS times each: no http; http with ui.enabled: false; UI on
# with no client; UI on with one headless Chromium tab open on the tree.
# The input is fed through a FIFO once the browser is open, so every variant
# is timed from the first byte to exit. Prints medians (docs/PERFORMANCE.md).
# Usage: bash bench/ui_cost.sh   (MESSAGES=1000000 RUNS=3 THREADS=1)
set -eu
cd "$(dirname "$0")/.."
BIN=build/tagproc
MESSAGES=${MESSAGES:-1000000}
RUNS=${RUNS:-3}
THREADS=${THREADS:-1}
PUPPETEER=${XDG_CACHE_HOME:-$HOME/.cache}/tagproc/puppeteer-core-23.11.1/node_modules
[ -d "$PUPPETEER/puppeteer-core" ] || { echo "run tests/ui/run_browser.sh once (installs puppeteer-core)" >&2; exit 2; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cat >"$OUT/gen.yaml" <<YAML
input:
  simulator: {nodes: 42, count: $MESSAGES, timestamps: fixed, metadata: short}
output:
  file: {path: "$OUT/in.jsonl"}
YAML
"$BIN" -c "$OUT/gen.yaml" 2>/dev/null
python3 bench/e2e_config.py "$OUT/fifo" "$OUT/out.jsonl" "$THREADS" >"$OUT/base.yaml"
printf 'http:\n  address: 127.0.0.1:0\nui:\n  enabled: false\n' | cat "$OUT/base.yaml" - >"$OUT/http.yaml"
printf 'http:\n  address: 127.0.0.1:0\n' | cat "$OUT/base.yaml" - >"$OUT/ui.yaml"
cp "$OUT/ui.yaml" "$OUT/browser.yaml"

run() { # variant -> "msgs_per_s cpu_us_per_msg"
    rm -f "$OUT/fifo" "$OUT/err"
    mkfifo "$OUT/fifo"
    exec 3<>"$OUT/fifo" # tagproc's open of its input does not wait for the feed
    /usr/bin/time -f "%U %S" -o "$OUT/time" "$BIN" -c "$OUT/$1.yaml" 2>"$OUT/err" 3>&- &
    local pid=$! bpid=
    for _ in $(seq 100); do grep -qs ' starting: ' "$OUT/err" && break; sleep 0.1; done
    if [ "$1" = browser ]; then
        local port
        port=$(grep -o 'on port [0-9]*' "$OUT/err" | awk '{print $3}')
        NODE_PATH=$PUPPETEER node bench/ui_open.js "http://127.0.0.1:$port/" >"$OUT/b" 2>&1 3>&- &
        bpid=$!
        for _ in $(seq 200); do grep -qs open "$OUT/b" && break; sleep 0.1; done
    fi
    local t0 t1
    t0=$(date +%s.%N)
    cat "$OUT/in.jsonl" >&3
    exec 3>&-
    wait $pid
    t1=$(date +%s.%N)
    if [ -n "$bpid" ]; then
        grep -q open "$OUT/b" || { echo "browser did not open the page:" >&2; cat "$OUT/b" >&2; }
        kill $bpid 2>/dev/null
        wait $bpid 2>/dev/null || true
    fi
    python3 -c "import sys; u,s=open('$OUT/time').read().split()[-2:]; n=$MESSAGES; print('%.0f %.3f' % (n/($t1-$t0), (float(u)+float(s))*1e6/n))"
}

for _ in $(seq "$RUNS"); do
    for v in base http ui browser; do
        echo "$v $(run $v)" | tee -a "$OUT/results" >&2
    done
done
python3 - "$OUT/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    v, rate, cpu = line.split()
    rows.setdefault(v, []).append((float(rate), float(cpu)))
base = statistics.median(r for r, _ in rows["base"])
base_cpu = statistics.median(c for _, c in rows["base"])
names = {"base": "no http", "http": "http, ui.enabled: false", "ui": "UI on, no client",
         "browser": "UI on, one browser on the tree"}
print("| variant | msgs/s (median) | vs no http | CPU µs/msg | vs no http |")
print("|---|---|---|---|---|")
for v in ("base", "http", "ui", "browser"):
    r = statistics.median(x for x, _ in rows[v])
    c = statistics.median(x for _, x in rows[v])
    print(f"| {names[v]} | {r:,.0f} | {100 * (r / base - 1):+.1f} % | {c:.2f} | {100 * (c / base_cpu - 1):+.1f} % |")
PY
