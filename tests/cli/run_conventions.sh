#!/usr/bin/env bash
# The command-line conventions of issue 16, one check (or a few) per item:
# help [COMMAND] and COMMAND --help everywhere, `tagproc FILE.yaml`, `-c -`,
# --set overrides, lint on rule test files, one validation shared by lint
# and run (all findings, each once, in the configured log format),
# `bench --json`, `tagproc test` comparing numbers by value, the `#` hint.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/lib.sh

# --- help [COMMAND], COMMAND --help everywhere
check_sh "tagproc help lists the commands" \
    "'$BIN' help | grep -q '^  lint ' && '$BIN' help | grep -q '^  test ' && '$BIN' help | grep -q '^  bench '"
for cmd in run lint test bench help config-doc man completion; do
    check_sh "tagproc $cmd --help: its usage, exit 0" \
        "'$BIN' $cmd --help >'$T/h' && head -1 '$T/h' | grep -q '^usage: tagproc .*$cmd' || head -1 '$T/h' | grep -q '^usage: tagproc \[run\]'"
    check_sh "tagproc help $cmd = tagproc $cmd --help" "cmp <('$BIN' help $cmd) <('$BIN' $cmd --help)"
done
check_sh "config-doc --help does not print the reference" \
    "! '$BIN' config-doc --help | grep -q 'Configuration reference'"
check_sh "tagproc lint CONFIG --help: help, not a lint" "'$BIN' lint examples/mqtt-uns.yaml --help | grep -q '^usage: tagproc lint'"
check_sh "tagproc help nope: exit 2, names it" "! '$BIN' help nope 2>'$T/e' && grep -q 'unknown command \"nope\"' '$T/e'"

# --- tagproc FILE.yaml runs it; a stray word gets the -c hint
check_sh "tagproc FILE.yaml runs it" \
    "printf '{\"payload\":1}\n' | '$BIN' examples/stdin-passthrough.yaml | grep -qx '{\"payload\":1,\"meta\":{}}'"
check_sh "tagproc WORD: did you mean -c WORD" \
    "! '$BIN' mycfg 2>'$T/e' </dev/null && grep -q 'did you mean -c mycfg' '$T/e'"

# --- -c - reads the config from stdin
printf 'input:\n  simulator: {nodes: 2, count: 6, rate: 0}\noutput:\n  stdout: {}\n' >"$T/sim.yaml"
check_sh "-c - reads the config from standard input" "'$BIN' -c - <'$T/sim.yaml' | wc -l | grep -qx 6"
check_sh "-c -: errors name <stdin>:LINE:COL" \
    "printf 'input:\n  stdinn: {}\n' | '$BIN' -c - 2>&1 | grep -q '<stdin>:2:3: input.stdinn: unknown input'"

# --- --set: repeatable, typed like YAML, errors name the override
check_sh "--set input.simulator.count=3 (an integer)" \
    "'$BIN' -c '$T/sim.yaml' --set input.simulator.count=3 | wc -l | grep -qx 3"
check_sh "--set is repeatable; the last one wins" \
    "'$BIN' -c '$T/sim.yaml' --set input.simulator.count=3 --set input.simulator.count=4 | wc -l | grep -qx 4"
check_sh "--set a list item's JavaScript" \
    "printf '{\"payload\":1}\n' | '$BIN' -c examples/stdin-tag-processor.yaml --set 'pipeline.processors[0].tag_processor.defaults=msg.meta.location_path=\"e.p\"; msg.meta.data_contract=\"_raw\"; msg.meta.tag_name=\"t\"; return msg;' --set 'pipeline.processors[0].tag_processor.conditions=[]' --set 'pipeline.processors[0].tag_processor.advancedProcessing=null' | grep -q '\"topic\":\"umh.v1.e.p._raw.t\"'"
check_sh "--set creates missing keys (input.simulator.timestamps)" \
    "'$BIN' -c '$T/sim.yaml' --set input.simulator.timestamps=fixed | head -1 | grep -q '\"timestamp_ms\":'"
check_sh "--set type error names the override" \
    "! '$BIN' -c '$T/sim.yaml' --set input.simulator.count=three 2>'$T/e' && grep -q -- '--set input.simulator.count=three: input.simulator.count: expected integer' '$T/e'"
check_sh "--set a whole section; a list where a string goes names the override" \
    "! '$BIN' -c '$T/sim.yaml' --set 'output={file: {path: [a, b]}}' 2>'$T/e' && grep -q -- '--set output={file: {path: \[a, b\]}}: output.file.path: expected string' '$T/e'"
check_sh "--set without =: names the override" \
    "! '$BIN' -c '$T/sim.yaml' --set pipeline.threads 2>'$T/e' && grep -q -- '--set pipeline.threads: expected KEY.PATH=VALUE' '$T/e'"
check_sh "--set index out of range: names the override" \
    "! '$BIN' -c examples/stdin-tag-processor.yaml --set 'pipeline.processors[3].x=1' 2>'$T/e' </dev/null && grep -q -- 'processors\[3\].x=1: index \[3\] out of range' '$T/e'"
check_sh "lint --set checks the overridden config" \
    "! '$BIN' lint examples/mqtt-uns.yaml --set pipeline.threads=many >'$T/o' 2>&1 && grep -q -- '--set pipeline.threads=many: pipeline.threads' '$T/o'"

# --- lint handles rule test files by their own schema; test on a config hints
check_sh "tagproc lint examples/*.yaml (configs and rule tests): clean" "'$BIN' lint examples/*.yaml"
cat >"$T/bad.test.yaml" <<'YAML'
config: ../nothing.yaml
cases: []
YAML
mkdir -p "$T/sub" && cp examples/stdin-tag-processor.yaml "$T/sub/"
cat >"$T/sub/keys.test.yaml" <<'YAML'
config: stdin-tag-processor.yaml
cases:
  - name: typo
    input: {payload: 1, mta: {}}
    expect: [{topik: x}]
YAML
check_sh "lint: rule test with a missing config names it" \
    "! '$BIN' lint '$T/bad.test.yaml' >'$T/o' 2>&1 && grep -q 'nothing.yaml' '$T/o'"
check_sh "lint: rule test keys checked with positions" \
    "! '$BIN' lint '$T/sub/keys.test.yaml' >'$T/o' 2>&1 && grep -q 'keys.test.yaml:4:25: cases\[0\].input.mta: unknown key' '$T/o' && grep -q 'keys.test.yaml:5:15: cases\[0\].expect\[0\].topik: unknown key' '$T/o'"
check_sh "tagproc test CONFIG: says it is a pipeline config" \
    "! '$BIN' test examples/mqtt-uns.yaml >'$T/o' 2>&1 && grep -q 'this is a pipeline config, not a rule test file' '$T/o'"

# --- one validation: the same findings from lint and run, all at once, each once
cat >"$T/multi.yaml" <<'YAML'
input:
  stdinn: {}
pipeline:
  thread: 2
  processors:
    - nodered_js:
        code: "return msg;;;)"
output:
  stdout: {colour: red}
YAML
"$BIN" lint "$T/multi.yaml" 2>/dev/null | sort >"$T/lint.txt"
"$BIN" -c "$T/multi.yaml" </dev/null 2>"$T/run.err" >/dev/null
rc=$?
sed -nE 's/^[^ ]+ error //p' "$T/run.err" | sort >"$T/run.txt"
check_sh "run: exit 2 on the invalid config" "[ $rc = 2 ]"
check_sh "lint finds all four problems at once" "wc -l <'$T/lint.txt' | grep -qx 4 && cat '$T/lint.txt'"
check_sh "run prints exactly lint's findings, each once" "diff '$T/lint.txt' '$T/run.txt'"
sed 's/^output:/logger: {format: json}\noutput:/' "$T/multi.yaml" >"$T/multi-json.yaml"
"$BIN" -c "$T/multi-json.yaml" </dev/null 2>"$T/json.err" >/dev/null
check_sh "run with logger.format json: every finding is a JSON log line" \
    "python3 -c 'import json,sys; e=[m for m in map(json.loads, open(sys.argv[1])) if m[\"level\"]==\"error\"]; assert len(e)==4, e' '$T/json.err'"

# --- bench --json prints only JSON
check_sh "bench --json: stdout is one JSON object" \
    "'$BIN' bench --json --messages 2000 --workload minimal >'$T/b.json' && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d[\"messages\"]==2000, d' '$T/b.json'"

# --- tagproc test compares JSON numbers by value, and says so
cat >"$T/num.test.yaml" <<'YAML'
processors:
  - nodered_js:
      code: |
        msg.payload = {a: 1, b: 0.1, c: 100, s: "1.0"};
        return msg;
cases:
  - name: numbers by value
    input: {payload: 1}
    expect:
      - payload: {c: 1e2, b: 0.10, a: 1.0, s: "1.0"}
YAML
check_sh "test: 1.0 equals 1, 1e2 equals 100, key order free" "'$BIN' test '$T/num.test.yaml'"
sed -i 's/s: "1.0"}$/s: "1"}/' "$T/num.test.yaml"
check_sh "test: a string stays a string, the diff says how it compares" \
    "! '$BIN' test '$T/num.test.yaml' >'$T/o' && grep -q 'JSON compared by value' '$T/o'"
check_sh "tagproc test --help says numbers compare by value" "'$BIN' test --help | grep -q 'numbers'"

# --- a hint for # comments in JavaScript
printf 'pipeline:\n  processors:\n    - nodered_js:\n        code: |\n          # the unit\n          return msg;\n' >"$T/hash.yaml"
check_sh "lint: # comment gets the hint" \
    "'$BIN' lint '$T/hash.yaml' 2>/dev/null | grep -q 'hash.yaml:5:11: .*comments are // or /\* \*/, not #'"
check_sh "run: # comment gets the hint" \
    "! '$BIN' -c '$T/hash.yaml' </dev/null 2>'$T/e' && grep -q 'not #' '$T/e'"
finish
