#!/usr/bin/env python3
"""Runs the tag_processor conformance vectors (tests/conformance/README via
/work/shared/conformance/README.md) against a tagproc binary.

usage: conformance.py BINARY VECTORS.json [NAME_REGEX] [-j JOBS] [--keep]

Each case becomes a YAML config (stdin -> one tag_processor -> stdout), runs as
`BINARY -c CONFIG --stats STATS.json < input.jsonl > output.jsonl`, and its
output lines and drop counters are compared with the expectation. Prints
`ok NAME` or `FAIL NAME: why` per case and `N passed, M failed` last; exits 1
on any failure. Python standard library only.
"""

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

DROP_REASONS = ["filtered", "js_error", "js_timeout", "js_memory", "missing_field",
                "invalid_topic", "invalid_value", "invalid_input"]
NOW_SLACK_MS = 2500
RUN_TIMEOUT_S = 120


class RawNum(str):
    """A JSON number kept as its own text (so inputs are passed on unchanged)."""


def load_vectors(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f, parse_float=RawNum, parse_int=RawNum)


def num_value(n):
    """Python number of a RawNum."""
    try:
        return int(n)
    except ValueError:
        return float(n)


# ---- serialising (inputs as compact JSON, config as YAML) ----

def to_json(v):
    """Compact JSON keeping RawNum text as is."""
    if isinstance(v, RawNum):
        return str(v)
    if isinstance(v, dict):
        return "{" + ",".join(to_json(str(k)) + ":" + to_json(x) for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ",".join(to_json(x) for x in v) + "]"
    return json.dumps(v, ensure_ascii=False)


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def to_yaml(v, indent=0):
    """Block YAML; every scalar is written as JSON (a valid YAML flow scalar)."""
    pad = " " * indent
    if isinstance(v, dict):
        if not v:
            return "{}"
        lines = []
        for k, x in v.items():
            key = str(k) if _PLAIN_KEY.fullmatch(str(k)) else json.dumps(str(k), ensure_ascii=False)
            if isinstance(x, (dict, list)) and x:
                lines.append(pad + key + ":\n" + to_yaml(x, indent + 2))
            else:
                lines.append(pad + key + ": " + to_yaml(x, indent + 2))
        return "\n".join(lines)
    if isinstance(v, list):
        if not v:
            return "[]"
        lines = []
        for x in v:
            if isinstance(x, (dict, list)) and x:
                body = to_yaml(x, indent + 2)
                lines.append(pad + "- " + body[indent + 2:])
            else:
                lines.append(pad + "- " + to_yaml(x, indent + 2))
        return "\n".join(lines)
    return to_json(v)


def make_config(case):
    cfg = {
        "input": {"stdin": {}},
        "pipeline": {
            "threads": RawNum(str(case.get("threads", 1))),
            "processors": [{"tag_processor": case["config"]}],
        },
        "output": {"stdout": {}},
    }
    return "# conformance case " + case["name"] + "\n" + to_yaml(cfg) + "\n"


# ---- parsing output lines with the raw text of every value ----

class Node:
    """A parsed JSON value with its exact text; objects keep key order."""

    def __init__(self, kind, value, raw):
        self.kind = kind  # object, array, string, number, true, false, null
        self.value = value  # list of (key, Node) / list of Node / python scalar
        self.raw = raw

    def get(self, key):
        for k, n in self.value:
            if k == key:
                return n
        return None

    def keys(self):
        return [k for k, _ in self.value]

    def plain(self):
        if self.kind == "object":
            return {k: n.plain() for k, n in self.value}
        if self.kind == "array":
            return [n.plain() for n in self.value]
        return self.value


_WS = re.compile(r"[ \t\n\r]*")
_NUM = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


class ParseError(Exception):
    pass


def _parse(s, i):
    i = _WS.match(s, i).end()
    if i >= len(s):
        raise ParseError("unexpected end at column %d" % (i + 1))
    c = s[i]
    start = i
    if c == "{":
        pairs, seen = [], set()
        i = _WS.match(s, i + 1).end()
        if s.startswith("}", i):
            return Node("object", pairs, s[start:i + 1]), i + 1
        while True:
            i = _WS.match(s, i).end()
            if not s.startswith('"', i):
                raise ParseError("expected a key at column %d" % (i + 1))
            key, i = json.decoder.scanstring(s, i + 1)
            if key in seen:
                raise ParseError("duplicate key %r" % key)
            seen.add(key)
            i = _WS.match(s, i).end()
            if not s.startswith(":", i):
                raise ParseError("expected ':' at column %d" % (i + 1))
            node, i = _parse(s, i + 1)
            pairs.append((key, node))
            i = _WS.match(s, i).end()
            if s.startswith(",", i):
                i += 1
                continue
            if s.startswith("}", i):
                return Node("object", pairs, s[start:i + 1]), i + 1
            raise ParseError("expected ',' or '}' at column %d" % (i + 1))
    if c == "[":
        items = []
        i = _WS.match(s, i + 1).end()
        if s.startswith("]", i):
            return Node("array", items, s[start:i + 1]), i + 1
        while True:
            node, i = _parse(s, i)
            items.append(node)
            i = _WS.match(s, i).end()
            if s.startswith(",", i):
                i += 1
                continue
            if s.startswith("]", i):
                return Node("array", items, s[start:i + 1]), i + 1
            raise ParseError("expected ',' or ']' at column %d" % (i + 1))
    if c == '"':
        try:
            text, i = json.decoder.scanstring(s, i + 1)
        except json.JSONDecodeError as e:
            raise ParseError(str(e))
        return Node("string", text, s[start:i]), i
    for lit, val in (("true", True), ("false", False), ("null", None)):
        if s.startswith(lit, i):
            return Node(lit, val, lit), i + len(lit)
    m = _NUM.match(s, i)
    if m:
        return Node("number", num_value(m.group()), m.group()), m.end()
    raise ParseError("unexpected %r at column %d" % (c, i + 1))


def parse_line(line):
    node, i = _parse(line, 0)
    if _WS.match(line, i).end() != len(line):
        raise ParseError("trailing text at column %d" % (i + 1))
    return node


# ---- comparing ----

def same_json(want, got):
    """JSON equality with numbers compared numerically (as doubles)."""
    if isinstance(want, RawNum):
        want = num_value(want)
    if isinstance(want, bool) or isinstance(got, bool):
        return isinstance(want, bool) and isinstance(got, bool) and want == got
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return float(want) == float(got)
    if isinstance(want, dict):
        return (isinstance(got, dict) and set(want) == set(got)
                and all(same_json(want[k], got[k]) for k in want))
    if isinstance(want, list):
        return (isinstance(got, list) and len(want) == len(got)
                and all(same_json(a, b) for a, b in zip(want, got)))
    return type(want) is type(got) and want == got


def show(v):
    return to_json(v) if not isinstance(v, Node) else v.raw


def check_message(idx, want, env, t0, t1):
    """Problems of output message idx (a parsed envelope) against its expectation."""
    errs = []
    where = "output[%d]" % idx
    if env.kind != "object":
        return ["%s: not a JSON object" % where]
    payload = env.get("payload")
    meta_node = env.get("meta")
    meta = {}
    if meta_node is not None:
        if meta_node.kind != "object":
            errs.append("%s: meta is not an object" % where)
        else:
            meta = meta_node.plain()
    if "topic" in want:
        topic = env.get("topic")
        got = topic.plain() if topic is not None else None
        if got != want["topic"]:
            errs.append("%s: topic %s, want %s" % (where, json.dumps(got), json.dumps(want["topic"])))
    if payload is None or payload.kind != "object":
        errs.append("%s: payload is not an object: %s" % (where, payload.raw if payload else None))
        return errs
    if payload.keys() != ["timestamp_ms", "value"]:
        errs.append("%s: payload keys %s, want [\"timestamp_ms\", \"value\"]"
                    % (where, json.dumps(payload.keys())))
    value = payload.get("value")
    if "value" in want:
        if value is None or not same_json(want["value"], value.plain()):
            errs.append("%s: value %s, want %s" % (where, value.raw if value else "(absent)",
                                                   show(want["value"])))
    if "value_raw" in want:
        if value is None or value.raw != want["value_raw"]:
            errs.append("%s: value text %s, want exactly %s"
                        % (where, value.raw if value else "(absent)", want["value_raw"]))
    ts = payload.get("timestamp_ms")
    if "timestamp_ms" in want:
        w = want["timestamp_ms"]
        if ts is None or ts.kind != "number" or not re.fullmatch(r"-?[0-9]+", ts.raw):
            errs.append("%s: timestamp_ms %s is not an integer"
                        % (where, ts.raw if ts else "(absent)"))
        elif w == "now":
            if not (t0 - NOW_SLACK_MS <= ts.value <= t1 + NOW_SLACK_MS):
                errs.append("%s: timestamp_ms %d is not the current time (run: %d..%d)"
                            % (where, ts.value, t0, t1))
        elif w != "any":
            if ts.value != num_value(w):
                errs.append("%s: timestamp_ms %d, want %s" % (where, ts.value, w))
    for k, v in want.get("meta", {}).items():
        if k not in meta:
            errs.append("%s: meta %s absent, want %s" % (where, k, json.dumps(v)))
        elif meta[k] != v:
            errs.append("%s: meta %s = %s, want %s"
                        % (where, k, json.dumps(meta[k]), json.dumps(v)))
    for k in want.get("absent_meta", []):
        if k in meta:
            errs.append("%s: meta %s = %s must be absent" % (where, k, json.dumps(meta[k])))
    return errs


def check_drops(case, stats):
    errs = []
    dropped = stats.get("dropped") if isinstance(stats, dict) else None
    if not isinstance(dropped, dict):
        return ["stats file has no \"dropped\" object: %s" % json.dumps(stats)]
    want = {k: num_value(v) for k, v in case.get("dropped", {}).items()}
    for reason in sorted(set(DROP_REASONS) | set(dropped) | set(want)):
        got = dropped.get(reason, 0)
        if reason == "filtered" and reason not in want:
            continue
        if got != want.get(reason, 0):
            errs.append("dropped.%s = %s, want %s" % (reason, got, want.get(reason, 0)))
    return errs


def tail(text, n=40):
    lines = text.rstrip("\n").split("\n")
    if len(lines) > n:
        lines = ["... (%d lines before)" % (len(lines) - n)] + lines[-n:]
    return "\n".join("    | " + line for line in lines)


def run_case(binary, case, workdir, keep):
    """Returns (ok, report text)."""
    name = case["name"]
    d = tempfile.mkdtemp(prefix=re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:40] + ".", dir=workdir)
    cfg_path = os.path.join(d, "config.yaml")
    in_path = os.path.join(d, "input.jsonl")
    out_path = os.path.join(d, "output.jsonl")
    stats_path = os.path.join(d, "stats.json")
    with open(cfg_path, "w", encoding="utf-8") as f:
        f.write(make_config(case))
    with open(in_path, "w", encoding="utf-8") as f:
        for item in case["input"]:
            f.write(to_json(item) + "\n")
    env = dict(os.environ)
    env.pop("TAGPROC_FIXED_NOW_MS", None)
    t0 = int(time.time() * 1000)
    try:
        with open(in_path, "rb") as fin, open(out_path, "wb") as fout:
            proc = subprocess.run([binary, "-c", cfg_path, "--stats", stats_path], stdin=fin,
                                  stdout=fout, stderr=subprocess.PIPE, env=env,
                                  timeout=RUN_TIMEOUT_S)
        stderr = proc.stderr.decode("utf-8", "replace")
        rc = proc.returncode
    except subprocess.TimeoutExpired as e:
        stderr = (e.stderr or b"").decode("utf-8", "replace")
        rc = "timeout after %ds" % RUN_TIMEOUT_S
    except OSError as e:
        stderr, rc = "", "cannot run %s: %s" % (binary, e)
    t1 = int(time.time() * 1000)
    with open(out_path, "rb") as f:
        out_text = f.read().decode("utf-8", "replace")

    errs = []
    if rc != 0:
        if isinstance(rc, int) and rc < 0:
            try:
                what = "killed by %s" % signal.Signals(-rc).name
            except ValueError:
                what = "killed by signal %d" % -rc
        elif isinstance(rc, int):
            what = "exit status %d" % rc
        else:
            what = rc
        errs.append("tagproc failed (%s)" % what)
    else:
        lines = [ln for ln in out_text.split("\n") if ln != ""]
        parsed = []
        for i, ln in enumerate(lines):
            try:
                parsed.append(parse_line(ln))
            except ParseError as e:
                errs.append("output line %d is not valid JSON (%s): %s" % (i + 1, e, ln))
        if not errs:
            want = case["expect"]
            if len(parsed) != len(want):
                errs.append("%d output messages, want %d" % (len(parsed), len(want)))
            for i, (w, env_node) in enumerate(zip(want, parsed)):
                errs.extend(check_message(i, w, env_node, t0, t1))
        try:
            with open(stats_path, encoding="utf-8") as f:
                stats = json.load(f)
            errs.extend(check_drops(case, stats))
        except (OSError, ValueError) as e:
            errs.append("cannot read the --stats file: %s" % e)

    if not errs:
        if not keep:
            shutil.rmtree(d, ignore_errors=True)
        return True, "ok " + name
    report = ["FAIL %s: %s" % (name, errs[0])]
    report += ["  " + e for e in errs[1:]]
    report.append("  expected outputs:")
    report += ["    | " + to_json(w) for w in case["expect"]] or ["    | (none)"]
    if case.get("dropped"):
        report.append("    | dropped: " + to_json(case["dropped"]))
    report.append("  actual output:")
    report.append(tail(out_text) if out_text.strip() else "    | (none)")
    if stderr.strip():
        report.append("  stderr:")
        report.append(tail(stderr))
    report.append("  files: %s" % d if keep else "  (rerun with --keep to keep the files)")
    if not keep:
        shutil.rmtree(d, ignore_errors=True)
    return False, "\n".join(report)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("vectors")
    ap.add_argument("filter", nargs="?", help="regular expression on case names")
    ap.add_argument("-j", "--jobs", type=int, default=min(8, os.cpu_count() or 1))
    ap.add_argument("--keep", action="store_true", help="keep the files of failed cases")
    args = ap.parse_args()

    if not (os.path.isfile(args.binary) and os.access(args.binary, os.X_OK)):
        print("FAIL: %s is not an executable file" % args.binary)
        print("0 passed, 1 failed")
        return 1
    binary = os.path.abspath(args.binary)
    cases = load_vectors(args.vectors)
    if args.filter:
        cases = [c for c in cases if re.search(args.filter, c["name"])]
        if not cases:
            print("no case matches %r" % args.filter)
            print("0 passed, 0 failed")
            return 1
    workdir = tempfile.mkdtemp(prefix="tagproc-conformance.")
    passed = failed = 0
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(run_case, binary, c, workdir, args.keep) for c in cases]
            for fut in futures:
                ok, text = fut.result()
                print(text, flush=True)
                if ok:
                    passed += 1
                else:
                    failed += 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
