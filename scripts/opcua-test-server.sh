#!/usr/bin/env bash
# The OPC UA test server (tests/opcua/server.js on node-opcua 2.140.0, the
# last line that runs on Debian 12's Node), so the `opcua` input can be tried
# without a PLC:  scripts/opcua-test-server.sh [PORT]   (or `make opcua-server`)
# listens on opc.tcp://127.0.0.1:PORT (default 4840) until Ctrl-C.
# node-opcua is installed once, exactly as pinned by tests/opcua/npm/lock.json
# (`npm ci`), into third_party/node-opcua (TAGPROC_NODE_OPCUA_DIR overrides).
# `--install` only installs and prints the node_modules path.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${TAGPROC_NODE_OPCUA_DIR:-$root/third_party/node-opcua}

install_node_opcua() {
    local want
    want=$(cat "$root/tests/opcua/npm/manifest.json" "$root/tests/opcua/npm/lock.json" | sha256sum | cut -d" " -f1)
    mkdir -p "$dir"
    (
        flock 9
        if [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$want" ]; then
            echo "opcua-test-server: installing node-opcua (pinned) into $dir" >&2
            rm -rf "$dir/node_modules"
            cp "$root/tests/opcua/npm/manifest.json" "$dir/package.json"
            cp "$root/tests/opcua/npm/lock.json" "$dir/package-lock.json"
            (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
            echo "$want" >"$dir/.stamp"
        fi
    ) 9>"$dir/.lock"
}

install_node_opcua
if [ "${1:-}" = "--install" ]; then
    echo "$dir/node_modules"
    exit 0
fi
PORT=${1:-${PORT:-4840}} NODE_PATH="$dir/node_modules" exec node "$root/tests/opcua/server.js"
