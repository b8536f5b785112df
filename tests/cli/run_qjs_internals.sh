#!/usr/bin/env bash
# Differential test of src/js/qjs_internals.c (issue 10, item 2): the same
# seeded messages through tagproc (TP_QJS_INTERNALS=ON: fast paths reading
# QuickJS internals) and tagproc_qjs_public (the same program built with it
# OFF: public QuickJS API only) must give byte-identical output, dead letters
# and counters. The rules and the metadata are chosen to reach every fast
# path and every reason one declines: recycled msg/meta objects over changing
# key sets, cached keys and values, Latin-1 and wide strings, numbers,
# booleans, null, objects, index-like and symbol keys, accessors,
# non-enumerable and deleted keys, replaced prototypes, native `if`s on
# present and absent keys, fan-out, filters, errors and a nodered_js stage.
set -u
BIN=$(realpath "${1:-build/tagproc}")
BUILD=$(realpath "${2:-build}")
PUB=$BUILD/tagproc_qjs_public
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
[ -n "${KEEP:-}" ] && trap - EXIT && echo "keeping $T"
. tests/lib.sh

LINES=20000
case "$BUILD" in *asan*) LINES=6000 ;; esac

cat >"$T/c.yaml" <<'YAML'
input:
  stdin: {}
pipeline:
  threads: 1
  processors:
    - tag_processor:
        defaults: |
          msg.meta.location_path = "enterprise.site.area." + (msg.meta.line || "line0");
          msg.meta.data_contract = "_historian";
          msg.meta.tag_name = msg.meta.opcua_tag_name;
          return msg;
        conditions:
          - if: msg.meta.kind === "num"
            then: |
              msg.meta.n = 42; msg.meta.f = 1.5; msg.meta.big = 1e21; msg.meta.neg = -0;
              msg.meta.b = true; msg.meta.no = false; msg.meta.gone = null; msg.meta.u = undefined;
              return msg;
          - if: msg.meta.kind === "obj"
            then: |
              msg.meta.o = {a: [1, "x"], b: null}; msg.meta["123"] = "index"; msg.meta["7"] = 7;
              msg.meta[Symbol("s")] = "symbol";
              return msg;
          - if: msg.meta.kind == 'acc'
            then: |
              Object.defineProperty(msg.meta, "getter", {get: () => "got", enumerable: true});
              Object.defineProperty(msg.meta, "hidden", {value: "h", enumerable: false});
              return msg;
          - if: msg.meta.kind === "del"
            then: |
              delete msg.meta.line; delete msg.meta.opcua_tag_name; msg.meta.tag_name = "t";
              return msg;
          - if: msg.meta.kind === "proto"
            then: |
              const m = Object.create({inherited: "i"}); Object.assign(m, msg.meta);
              msg.meta = m; return msg;
          - if: msg.meta.kind === "nullproto"
            then: |
              const m = Object.create(null); Object.assign(m, msg.meta);
              msg.meta = m; return msg;
          - if: msg.meta.kind === "wide"
            then: |
              msg.meta.w = "\u20ac" + msg.meta.v; msg.meta.l = "\u00e4" + msg.meta.v;
              return msg;
          - if: msg.meta.kind === "fan"
            then: |
              return [msg, {payload: msg.payload, meta: Object.assign({}, msg.meta, {copy: 1})}];
          - if: msg.meta.kind === "drop"
            then: return null;
          - if: msg.meta.kind === "throw"
            then: throw new Error("rule failed for " + msg.meta.v);
          - if: msg.meta.kind === "new"
            then: |
              return {payload: {wrapped: msg.payload}, meta: {tag_name: "n", location_path: "a.b",
                      data_contract: "_historian", v: msg.meta.v, timestamp_ms: 1}};
          - if: msg.meta.absent === "x"
            then: |
              msg.meta.never = "1"; return msg;
          - if: msg.meta.v !== "v3"
            then: |
              msg.meta.seen = (msg.meta.seen || "") + "!"; return msg;
          - if: msg.meta.v === "v1"
            then: |
              cache.set("last", msg.meta.v); msg.meta.cached = cache.get("last"); return msg;
    - nodered_js:
        code: |
          if (msg.meta.kind === "nr") { msg.meta.nr = String(msg.payload).length; }
          if (msg.meta.kind === "nrdrop") return null;
          return msg;
output:
  stdout: {}
dead_letter:
  file:
    path: DEAD
YAML

python3 - "$LINES" >"$T/in.jsonl" <<'PY'
import json, random, sys
n = int(sys.argv[1])
r = random.Random(10)
vocab = ["k%d%s" % (i, "_" * r.randint(0, 9)) for i in range(300)]
kinds = ["num", "obj", "acc", "del", "proto", "nullproto", "wide", "fan", "drop", "throw",
         "new", "nr", "nrdrop", "plain", "plain", "plain"]
values = ["v1", "v2", "v3", "", "\u00e4\u00f6", "\u20ac", "a\"b\\c", "x" * 70]
payloads = [1, -0.5, 1e300, "text", {"a": 1}, [1, 2], True, None, "{bad json", "12"]
for i in range(n):
    meta = {k: r.choice(values) for k in r.sample(vocab, r.randint(0, 12))}
    meta.update({"opcua_tag_name": "t%d" % (i % 7), "line": "l%d" % (i % 3),
                 "kind": r.choice(kinds), "v": r.choice(values), "timestamp_ms": "1700000000000"})
    if i % 11 == 0:
        del meta["opcua_tag_name"]  # missing_field
    p = r.choice(payloads)
    line = {"payload": p, "meta": meta}
    print(json.dumps(line) if i % 13 else json.dumps(p))  # some lines are bare payloads
PY

run() { # binary, name
    sed "s|DEAD|$T/$2.dead|" "$T/c.yaml" >"$T/$2.yaml"
    "$1" -c "$T/$2.yaml" --log-level debug --stats "$T/$2.stats" <"$T/in.jsonl" >"$T/$2.out" 2>"$T/$2.err"
    echo $? >"$T/$2.rc"
}
run "$BIN" on
run "$PUB" off

check_sh "ON build: exit 0, the internals in use" \
    "[ \$(cat '$T/on.rc') = 0 ] && grep -q 'fast paths: QuickJS internals in use' '$T/on.err'"
check_sh "OFF build: exit 0, public API only" \
    "[ \$(cat '$T/off.rc') = 0 ] && grep -q 'built with TP_QJS_INTERNALS=OFF' '$T/off.err'"
check_sh "the run covers outputs, fan-out copies, filters, errors and missing fields" \
    "grep -q '\"copy\":\"1\"' '$T/on.out' && grep -q '\"n\":\"42\"' '$T/on.out' &&
     grep -q '\"filtered\":[1-9]' '$T/on.stats' && grep -q '\"js_error\":[1-9]' '$T/on.stats' &&
     grep -q '\"missing_field\":[1-9]' '$T/on.stats'"
for f in out stats; do
    check_sh "ON and OFF: $f byte for byte equal" \
        "[ -s '$T/on.$f' ] && cmp '$T/on.$f' '$T/off.$f'"
done
# Dead letters come from the reader, worker and writer threads, so their
# order varies from run to run of one binary: the records are compared sorted.
check_sh "ON and OFF: dead letter records byte for byte equal" \
    "[ -s '$T/on.dead' ] && cmp <(sort '$T/on.dead') <(sort '$T/off.dead')"

# Second run: metadata layouts that repeat (runs of equal key sequences, so
# the bridge's layout memos and kept shapes are used, and broken by stages
# that change, delete, add, reorder, hide or replace keys, in every stage),
# JSON envelopes parsed by the rules and merged with Object.assign (as the
# MQTT bench does).
cat >"$T/c2.yaml" <<'YAML'
input:
  stdin: {}
pipeline:
  threads: 1
  processors:
    - tag_processor:
        defaults: |
          const env = msg.payload;
          if (env && typeof env === "object" && env.meta) {
            msg.meta = Object.assign(msg.meta, env.meta);
            msg.payload = env.payload;
          }
          msg.meta.location_path = "enterprise.site";
          msg.meta.data_contract = "_historian";
          msg.meta.tag_name = msg.meta.opcua_tag_name || "t";
          if (msg.meta.op0 === "del") delete msg.meta.mqtt_qos;
          if (msg.meta.op0 === "replace") msg.meta = {location_path: "a.b", data_contract: "_x",
                                                     tag_name: "r", fresh: "1", timestamp_ms: "1"};
          return msg;
        conditions:
          - if: msg.meta.op1 === "add"
            then: |
              msg.meta.extra = "e"; return msg;
          - if: msg.meta.op1 === "chg"
            then: |
              msg.meta.mqtt_topic = "changed/" + msg.meta.mqtt_topic; return msg;
          - if: msg.meta.op1 === "num"
            then: |
              msg.meta.n = 5; msg.meta.b = false; msg.meta.z = null; msg.meta.o = {k: [1]};
              return msg;
          - if: msg.meta.op1 === "order"
            then: |
              const t = msg.meta.mqtt_topic; delete msg.meta.mqtt_topic; msg.meta.mqtt_topic = t;
              return msg;
          - if: msg.meta.op1 === "assignnew"
            then: |
              msg.meta = Object.assign({}, msg.meta, {x: "y"}); return msg;
        advancedProcessing: |
          if (msg.meta.op2 === "hide")
            Object.defineProperty(msg.meta, "mqtt_retain", {enumerable: false});
          if (msg.meta.op2 === "del") delete msg.meta.opcua_tag_type;
          if (msg.meta.op2 === "null") msg.meta.mqtt_topic = null;
          if (typeof msg.payload === "number") msg.payload = msg.payload * 2;
          return msg;
output:
  stdout: {}
YAML
python3 - "$LINES" >"$T/in2.jsonl" <<'PY'
import json, random, sys
n = int(sys.argv[1])
r = random.Random(11)
layouts = [["mqtt_topic", "mqtt_qos", "mqtt_retain"],
           ["kafka_key", "kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp_ms"],
           ["mqtt_topic", "mqtt_qos", "mqtt_retain", "user_prop"], []]
ops = ["", "", "", "", "del", "replace", "add", "chg", "num", "order", "assignnew", "hide", "null"]
i = 0
while i < n:
    layout, run = r.choice(layouts), r.randint(1, 20)
    for _ in range(min(run, n - i)):
        meta = {k: "%s-%d" % (k, r.randint(0, 3)) for k in layout}
        meta["timestamp_ms"] = "1600000000000"  # when the envelope stays a string
        for s in ("op0", "op1", "op2"):
            op = r.choice(ops)
            if op:
                meta[s] = op
        env = {"payload": r.choice([i, 1.5, "s", {"a": [1, {"b": None}]}, True]),
               "meta": {"opcua_node_id": "ns=1;i=%d" % (2200 + i % 42),
                        "opcua_tag_name": "Tag%d" % (i % 42), "opcua_tag_type": "number",
                        "timestamp_ms": str(1700000000000 + i)}}
        print(json.dumps({"payload": env if i % 17 else json.dumps(env), "meta": meta}))
        i += 1
PY
run2() { # binary, name
    "$1" -c "$T/c2.yaml" --stats "$T/$2.stats2" <"$T/in2.jsonl" >"$T/$2.out2" 2>"$T/$2.err2"
    echo $? >"$T/$2.rc2"
}
run2 "$BIN" on
run2 "$PUB" off
check_sh "repeating layouts: both exit 0, every message out" \
    "[ \$(cat '$T/on.rc2') = 0 ] && [ \$(cat '$T/off.rc2') = 0 ] &&
     [ \$(wc -l <'$T/on.out2') = $LINES ] && grep -q '\"fresh\":\"1\"' '$T/on.out2'"
check_sh "repeating layouts: ON and OFF output byte for byte equal" \
    "cmp '$T/on.out2' '$T/off.out2'"
finish
