#!/usr/bin/env bash
# The HTTP endpoint under 1,200 slow clients (each sends half a request and
# waits): /health and /metrics still answer, libmicrohttpd's messages go
# through the logger (no raw stderr lines), and with http.max_connections
# (the excess waits in the listen queue) http.timeout_s closes idle ones.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
. tests/lib.sh
cleanup_on_exit

# slow_clients PORT N HOLD_S: opens N connections with half a request each,
# checks /health and /metrics meanwhile, then reports how many the server closed.
slow_clients() {
    python3 - "$@" <<'PY'
import resource, socket, sys, time, urllib.request
port, n, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 512), hard))
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
    socks.append(s)
time.sleep(0.5)
for path in ("/health", "/metrics"):
    r = urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10)
    print(path, r.status, len(r.read()))
time.sleep(hold)
closed = 0
for s in socks:
    s.setblocking(False)
    try:
        closed += s.recv(1) == b""
    except BlockingIOError:
        pass
    except ConnectionResetError:
        closed += 1
print("closed by the server:", closed)
PY
}
log_lines_only() { # every stderr line is a log line
    ! grep -Evq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z (trace|debug|info|warn|error) ' "$1"
}

cat >"$T/config.yaml" <<'YAML'
http:
  address: 127.0.0.1:0
input:
  simulator: {nodes: 5, rate: 100}
output:
  drop: {}
YAML
start_bg "$BIN" -c "$T/config.yaml" 2>"$T/err"
PID=$BG_PID
PORT=$(http_port "$T/err")
slow_clients "$PORT" 1200 0 >"$T/out" 2>&1
check_sh "/health and /metrics answer with 1,200 slow clients open" \
    "cat '$T/out'; grep -q '^/health 200' '$T/out' && grep -q '^/metrics 200' '$T/out'"
check_sh "still serving afterwards" "[ \$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/ready) = 200 ]"
check_sh "stderr has log lines only" "log_lines_only '$T/err'"
stop_bg "$PID"
rc=$?
check_sh "exit 0" "[ $rc = 0 ]"

# a connection limit and an idle timeout
cat >"$T/limits.yaml" <<'YAML'
http:
  address: 127.0.0.1:0
  max_connections: 50
  timeout_s: 1
input:
  simulator: {nodes: 5, rate: 100}
output:
  drop: {}
YAML
start_bg "$BIN" -c "$T/limits.yaml" 2>"$T/err2"
PID=$BG_PID
PORT=$(http_port "$T/err2")
python3 - "$PORT" >"$T/out2" 2>&1 <<'PY'
import socket, sys, time
port = int(sys.argv[1])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(80)]
for s in socks:
    s.sendall(b"GET /metrics HTTP/1.1\r\n")
time.sleep(0.5)
def closed():
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            n += s.recv(1) == b""
        except BlockingIOError:
            pass
        except ConnectionResetError:
            n += 1
    return n
print("closed at once:", closed())
time.sleep(2.5)
print("closed after the timeout:", closed())
big = socket.create_connection(("127.0.0.1", port))
big.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")
print("oversized request:", big.recv(12).decode())
PY
check_sh "max_connections and timeout_s: every idle connection is closed" \
    "cat '$T/out2'; grep -q 'closed at once: 0' '$T/out2' && grep -q 'closed after the timeout: 80' '$T/out2'"
check_sh "libmicrohttpd's messages go through the logger" \
    "grep -q 'oversized request: HTTP/1.1 431' '$T/out2' && grep -q 'warn  http: Error processing request (HTTP response code is 431' '$T/err2' && log_lines_only '$T/err2'"
stop_bg "$PID"
rc=$?
check_sh "exit 0 (limits)" "[ $rc = 0 ]"
finish
