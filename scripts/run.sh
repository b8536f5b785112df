#!/usr/bin/env bash
# `make run`: set-up and build quietly (the log goes to build/make-run.log and
# is shown only when something fails; only the tagproc binary is built), then
# the job: its data on stdout, and one summary line on stderr after it.
# Usage: scripts/run.sh CONFIG [CMAKE_ARGS...]
set -uo pipefail
cd "$(dirname "$0")/.."
config=${1:-examples/opcua-simulator.yaml}
shift || true
log=build/make-run.log
mkdir -p build
if ! { bash scripts/deps.sh && cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" &&
    cmake --build build -j "${JOBS:-2}" --target tagproc; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "make run: the build failed (full log: $log)" >&2
    exit 1
fi
stats=build/make-run-stats.json
./build/tagproc -c "$config" --stats "$stats"
rc=$?
python3 - "$stats" "$config" "$rc" "$log" <<'PY' >&2
import json, sys
path, config, rc, log = sys.argv[1:]
try:
    s = json.load(open(path))
except (OSError, ValueError):
    print(f"make run: tagproc exited with status {rc} (build log: {log})")
    sys.exit(0)
dropped = sum(s["dropped"].values())
print(f"make run: {config}: {s['received']} messages in, {s['processed']} out, "
      f"{dropped} dropped, exit status {rc} (build log: {log})")
PY
exit $rc
