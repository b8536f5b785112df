#!/usr/bin/env bash
# The Topic Browser's API and the talking process, against tagproc fed by
# the simulator (tests/ui/ui.yaml): topics appear, history and topics are
# bounded, drops are listed, the SSE stream delivers, `tagproc tap` prints
# JSON lines (filtered, drops) and a slow tap reader loses lines without
# slowing the pipeline, basic auth is enforced, ui.enabled: false turns it
# off, messages the output dropped are not shown as delivered (a local
# mosquitto), /version and /config (redacted), the banner, stats line,
# suppressed notice and exit summary, and trace lines.
set -u
BIN=$(realpath "${1:-build/tagproc}")
# `tagproc tap` runs until a timeout stops it. --foreground: timeout sends
# SIGTERM to tap alone, without its usual SIGCONT to the whole process group,
# which can cancel the SIGSTOP of LeakSanitizer's exit-time ptrace attach
# (ASan build) and leave tap spinning forever; -k 10 ends any hang.
TAP="timeout --foreground -k 10"
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
. tests/lib.sh
cleanup_on_exit

# start NAME CONFIG: runs tagproc in the background, sets PORT and URL.
start() {
    start_bg "$BIN" -c "$2" >/dev/null 2>"$T/$1.err"
    eval "PID_$1=$BG_PID"
    PORT=$(http_port "$T/$1.err")
    URL=http://127.0.0.1:$PORT
}
# stop NAME: SIGTERM and wait; sets RC.
stop() {
    local pid_var=PID_$1
    stop_bg "${!pid_var}"
    RC=$?
}
get() { curl -s --max-time 10 "$@"; }
code() { curl -s -o /dev/null --max-time 10 -w '%{http_code}' "$@"; }
# json FILE 'python expression on d': true when it holds.
json() { python3 -c "import json,sys; d=json.load(open('$1')); sys.exit(0 if ($2) else 1)"; }
TOPIC=umh.v1.enterprise.plant1.machiningArea.cnc-line.cnc5.plc123._historian.axis.x.Temperature

sed 's/^  stats_interval: 1/  stats_interval: 1\nui:\n  history: 5/' tests/ui/ui.yaml >"$T/main.yaml"
start main "$T/main.yaml"
MAIN=$URL
wait_until "get $MAIN/api/topics >'$T/topics.json'; json '$T/topics.json' \"d['total'] >= 11\"" 30
check "topics appear (11 UNS topics)" json "$T/topics.json" \
    "d['total'] == 11 and '$TOPIC' in [t['name'] for t in d['topics']] and all(t['count'] > 0 for t in d['topics'])"
wait_until "get '$MAIN/api/topic?name=$TOPIC' >'$T/topic.json'; json '$T/topic.json' \"d['count'] > 8\"" 30
check "a topic has its latest payload and metadata" json "$T/topic.json" \
    "d['meta']['opcua_node_id'] == 'ns=1;i=2200' and d['meta']['unit'] == '°C' and '\"value\"' in d['payload']"
check "history bounded by ui.history (5)" json "$T/topic.json" \
    "len(d['history']) == 5 and d['history_max'] == 5 and all(isinstance(p['value'], (int, float)) for p in d['history'])"
check_sh "unknown topic is 404" "[ \$(code '$MAIN/api/topic?name=nope') = 404 ]"
get "$MAIN/api/topics?q=unit%3D%C2%B0C" >"$T/q.json"
check "search by metadata (unit=°C)" json "$T/q.json" "d['matched'] == 1 and d['topics'][0]['name'] == '$TOPIC'"
get "$MAIN/api/topics?q=status." >"$T/q.json"
check "search by topic substring" json "$T/q.json" "d['matched'] == 2"
wait_until "get $MAIN/api/drops >'$T/drops.json'; json '$T/drops.json' \"'js_error' in d['recent']\"" 30
check "drops listed with error, stage, rule and input metadata" json "$T/drops.json" \
    "d['by_reason']['js_error'] > 0 and d['by_stage'][0]['rule'] == 'conditions[2]' and d['recent']['js_error'][0]['error'] == 'Error: forced failure for the Drops panel' and d['recent']['js_error'][0]['meta']['opcua_node_id'] == 'ns=1;i=2204' and len(d['recent']['js_error']) <= 20"
get "$MAIN/api/rules" >"$T/rules.json"
check "rules: per-rule counters" json "$T/rules.json" \
    "any(r['rule'] == 'conditions[2]' and r['errors'] > 0 and r['evaluations'] > 0 for r in d['rules'])"
get "$MAIN/api/stats" >"$T/stats.json"
check "stats: counts, rates, queue, rss, generation" json "$T/stats.json" \
    "d['received'] > 0 and d['processed'] > 0 and d['rate_in'] > 0 and d['queue']['capacity'] >= 4 and d['rss_bytes'] > 1000000 and d['config_generation'] == 0 and d['input'] == 'simulator'"
timeout 3 curl -sN "$MAIN/api/events" >"$T/events.txt"
check_sh "SSE /api/events delivers stats and topics" \
    "[ \$(grep -c '^data: {\"tick\"' '$T/events.txt') -ge 2 ] && grep '^data: ' '$T/events.txt' | head -1 | sed 's/^data: //' | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"stats\"][\"received\"] > 0 and len(d[\"topics\"]) == 11'"
get "$MAIN/" >"$T/index.html"
check_sh "the page is served from the binary" "grep -q 'Topic Browser' '$T/index.html' && [ \$(code $MAIN/app.js) = 200 ] && [ \$(code $MAIN/style.css) = 200 ]"
check_sh "no external resources (works offline)" \
    "! (cat '$T/index.html'; get $MAIN/app.js; get $MAIN/style.css) | grep -Eq 'https?://'"
check_sh "read-only: POST is refused" "[ \$(code -X POST $MAIN/api/topics) = 405 ]"
get "$MAIN/version" >"$T/version.json"
check "/version" json "$T/version.json" "d['name'] == 'tagproc' and d['version']"
get "$MAIN/config" >"$T/config.json"
check "/config is the effective configuration" json "$T/config.json" \
    "d['input']['simulator']['nodes'] == '12' and d['ui']['history'] == '5'"

# tap: output lines, a topic filter, drops
$TAP 3 "$BIN" tap --url "$MAIN" >"$T/tap.jsonl" 2>"$T/tap.err"
check_sh "tap prints output messages as JSON lines" \
    "[ \$(wc -l <'$T/tap.jsonl') -ge 20 ] && python3 -c 'import json; [json.loads(l) for l in open(\"$T/tap.jsonl\")]' && grep -q '\"kind\":\"output\"' '$T/tap.jsonl'"
$TAP 3 "$BIN" tap --url "$MAIN" --topic 'umh.v1.enterprise.plant1.machiningArea.cnc-line.cnc5.plc123._historian.status.+' >"$T/tap2.jsonl"
check_sh "tap --topic filters" \
    "[ \$(wc -l <'$T/tap2.jsonl') -ge 3 ] && python3 -c 'import json; assert all(json.loads(l)[\"topic\"].split(\".\")[-2] == \"status\" for l in open(\"$T/tap2.jsonl\"))'"
$TAP 3 "$BIN" tap --url "$MAIN" --drops >"$T/drops.jsonl"
check_sh "tap --drops prints drops" \
    "[ \$(wc -l <'$T/drops.jsonl') -ge 2 ] && python3 -c 'import json; l=[json.loads(x) for x in open(\"$T/drops.jsonl\")]; assert all(x[\"kind\"]==\"drop\" and x[\"reason\"]==\"js_error\" and x[\"message\"][\"meta\"][\"opcua_node_id\"]==\"ns=1;i=2204\" for x in l)'"
check_sh "tap to a closed port fails with exit 1" \
    "\"$BIN\" tap --url http://127.0.0.1:1 2>'$T/tap.err'; [ \$? = 1 ] && grep -q 'cannot connect' '$T/tap.err'"
check_sh "tap --url must be http://" "\"$BIN\" tap --url ftp://x 2>/dev/null; [ \$? = 2 ]"

# A tap reader that does not read: it loses lines (counted), the pipeline goes on.
sed 's/rate: 200/rate: 20000/; s/threads: 2/threads: 1/' tests/ui/ui.yaml >"$T/fast.yaml"
start fast "$T/fast.yaml"
FAST=$URL
python3 - "$PORT" >"$T/slow.out" 2>&1 <<'PY' &
import json, socket, sys, time, urllib.request
port = int(sys.argv[1])
stats = lambda: json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stats"))
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"GET /api/tap HTTP/1.0\r\n\r\n")
before = stats()["processed"]
time.sleep(4)  # not reading
after = stats()
print("processed while the reader slept:", after["processed"] - before, "tap_lost:", after["tap_lost"])
s.settimeout(5)
tail, seen, total = b"", False, 0
while not seen and total < 64 << 20:
    chunk = s.recv(1 << 20)
    if not chunk:
        break
    total += len(chunk)
    seen = b"event: lost" in tail + chunk
    tail = chunk[-16:]
print("lost event seen:", seen)
sys.exit(0 if after["tap_lost"] > 0 and after["processed"] - before > 20000 and seen else 1)
PY
wait $!
SLOW_RC=$?
check_sh "a slow tap reader loses lines, the pipeline does not wait" "cat '$T/slow.out'; [ $SLOW_RC = 0 ]"
stop fast

# bounded topics
sed 's/^  stats_interval: 1/  stats_interval: 1\nui:\n  max_topics: 4/' tests/ui/ui.yaml >"$T/small.yaml"
start small "$T/small.yaml"
wait_until "get $URL/api/topics >'$T/small.json'; json '$T/small.json' \"d['over_limit_messages'] > 0\"" 30
check "ui.max_topics bounds the topics" json "$T/small.json" "d['total'] == 4 and len(d['topics']) == 4"
stop small

# basic auth (password s3cret; hash made with `openssl passwd -5 -salt tagproc s3cret`)
sed 's/^  address: 127.0.0.1:0/  address: 127.0.0.1:0\n  basic_auth:\n    username: admin\n    password_hash: "$5$tagproc$PRIMwXzkVLc4QIidZ\/QRfyRLrAcmCUw3dU9AvZ1lxJ7"/' \
    tests/ui/ui.yaml >"$T/auth.yaml"
start auth "$T/auth.yaml"
check_sh "auth: no credentials is 401" "[ \$(code $URL/api/stats) = 401 ] && [ \$(code $URL/) = 401 ] && [ \$(code $URL/metrics) = 401 ]"
check_sh "auth: a wrong password is 401" "[ \$(code -u admin:wrong $URL/api/stats) = 401 ]"
check_sh "auth: the right password is 200" "[ \$(code -u admin:s3cret $URL/api/stats) = 200 ] && [ \$(code -u admin:s3cret $URL/api/topics) = 200 ]"
check_sh "auth: /health and /ready stay open for probes" "[ \$(code $URL/health) = 200 ] && [ \$(code $URL/ready) = 200 ]"
check_sh "auth: tap with user:password in the URL" \
    "$TAP 2 \"$BIN\" tap --url http://admin:s3cret@127.0.0.1:$PORT | head -1 | grep -q '\"kind\":\"output\"'"
check_sh "auth: tap without credentials is refused" "$TAP 2 \"$BIN\" tap --url $URL 2>&1 | grep -q 401"
get -u admin:s3cret "$URL/config" >"$T/config.json"
check "/config redacts secrets" json "$T/config.json" \
    "d['http']['basic_auth']['password_hash'] == '***' and 'PRIMw' not in open('$T/config.json').read()"
stop auth

# ui.enabled: false
sed 's/^  stats_interval: 1/  stats_interval: 1\nui:\n  enabled: false/' tests/ui/ui.yaml >"$T/off.yaml"
start off "$T/off.yaml"
check_sh "ui.enabled: false: no page, API or tap" \
    "[ \$(code $URL/) = 404 ] && [ \$(code $URL/api/topics) = 404 ] && [ \$(code $URL/api/tap) = 404 ] && [ \$(code $URL/metrics) = 200 ]"
stop off

# Output-side drops are not shown as delivered: an MQTT output (a local
# mosquitto) whose topic template renders empty for every message without
# virtual_path drops those (invalid_topic, stage "output"); only the three
# topics with virtual_path (axis.x and the two status tags) were delivered.
if [ ! -x /usr/sbin/mosquitto ]; then
    echo "installing Debian mosquitto"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends mosquitto >/dev/null
fi
BPORT=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$BPORT" >"$T/mosquitto.conf"
printf "user %s\n" "$(id -un)" >>"$T/mosquitto.conf" # as root: stay root (see run_mqtt.sh)
start_bg /usr/sbin/mosquitto -c "$T/mosquitto.conf" >"$T/broker.log" 2>&1
BROKER=$BG_PID
wait_port "$BPORT" 30
sed "s|^  drop: {}|  mqtt: {url: \"tcp://127.0.0.1:$BPORT\", topic: \"{{meta.virtual_path}}\"}|" \
    tests/ui/ui.yaml >"$T/outdrop.yaml"
start outdrop "$T/outdrop.yaml"
wait_until "get $URL/api/drops >'$T/od.json'; json '$T/od.json' \"d['by_reason']['invalid_topic'] > 20\"" 30
get "$URL/api/topics" >"$T/od_topics.json"
check "output drops: listed with stage output" json "$T/od.json" \
    "d['recent']['invalid_topic'][0]['stage'] == 'output' and 'rendered empty' in d['recent']['invalid_topic'][0]['error']"
check "output drops: not shown as delivered topics" json "$T/od_topics.json" \
    "d['total'] == 3 and all(t['name'].split('.')[-2] in ('x', 'status') for t in d['topics'])"
$TAP 3 "$BIN" tap --url "$URL" >"$T/od_tap.jsonl"
check_sh "output drops: not in the tap" \
    "[ \$(wc -l <'$T/od_tap.jsonl') -ge 3 ] && python3 -c 'import json; assert all(json.loads(l)[\"topic\"].split(\".\")[-2] in (\"x\", \"status\") for l in open(\"$T/od_tap.jsonl\"))'"
stop outdrop
kill "$BROKER"

# the talking process: banner, stats lines, suppressed notice, summary
sleep 1.5
stop main
check_sh "main exit 0" "[ $RC = 0 ]"
E=$T/main.err
check_sh "start banner" "grep -Eq 'info  tagproc [0-9.]+ starting: config=$T/main.yaml input=simulator output=drop threads=2 http=127.0.0.1:0 \(port [0-9]+\), Topic Browser on / stats_interval=1s' '$E'"
check_sh "periodic stats line" "grep -Eq 'info  stats: received=[0-9]+ \([0-9]+/s\) processed=[0-9]+ \([0-9]+/s\) dropped=[0-9]+ \(js_error=[0-9]+\) queue=[0-9]+/[0-9]+ latency_avg=' '$E'"
check_sh "the 'similar lines suppressed' notice is printed" "grep -Eq 'warn  [0-9]+ similar log lines suppressed' '$E'"
check_sh "exit summary" "grep -Eq 'info  tagproc stopped after [0-9.]+s: received=[0-9]+ processed=[0-9]+ dropped=[0-9]+ \(js_error=[0-9]+\) rate=[0-9]+ msgs/s' '$E'"

# debug and trace say something
printf 'input:\n  simulator: {nodes: 3, count: 6, rate: 0}\noutput:\n  drop: {}\n' >"$T/tiny.yaml"
"$BIN" -c "$T/tiny.yaml" --log-level trace 2>"$T/trace.err"
check_sh "--log-level trace shows each output message" "[ \$(grep -c 'trace output message: {' '$T/trace.err') = 6 ]"
check_sh "--log-level debug shows batches" "grep -Eq 'debug batch [0-9]+: [0-9]+ in, [0-9]+ out' '$T/trace.err'"
"$BIN" -c "$T/tiny.yaml" 2>"$T/info.err"
check_sh "info: banner and summary, no batch lines" "grep -q 'starting' '$T/info.err' && grep -q 'stopped after' '$T/info.err' && ! grep -q 'debug' '$T/info.err'"
finish
