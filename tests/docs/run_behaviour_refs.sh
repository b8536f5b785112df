#!/usr/bin/env bash
# docs/BEHAVIOUR.md stays the reference it claims to be: every "SPEC n.m" or
# "BEHAVIOUR n.m" cited in src/, tests/, docs/ and README.md (lists and
# ranges such as "SPEC 3.5-3.8", "SPEC 3.10, 4.2" included) names a section
# of it (a "## n." / "### n.m" heading or a "**n.m.k**" item), and every
# repository path written in backquotes or linked in docs/BEHAVIOUR.md and
# docs/internals/*.md exists. The checker is first shown a tree with a
# dangling reference and a missing path, which it must reject.
set -u
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/lib.sh

cat >"$T/check.py" <<'PY'
import os, re, sys

root = sys.argv[1]
spec = os.path.join(root, "docs/BEHAVIOUR.md")
text = open(spec, encoding="utf-8").read()
sections = set(re.findall(r"^#{2,4} (\d+(?:\.\d+)*)\.? ", text, re.M))
sections |= set(re.findall(r"\*\*(\d+(?:\.\d+)+)\*\*", text))
problems = []

NUM = r"\d+(?:\.\d+)*"
REF = re.compile(r"\b(?:SPEC|BEHAVIOUR) (%s(?:\s*(?:,|/|-|–|and)\s*%s)*)" % (NUM, NUM))
for top in ("src", "tests", "docs", "README.md"):
    base = os.path.join(root, top)
    paths = [base] if os.path.isfile(base) else [
        os.path.join(d, f) for d, _, fs in os.walk(base) for f in fs]
    for path in sorted(paths):
        if "/corpus/" in path or not re.search(r"\.(c|h|md|sh|py|js|1|txt|yaml|json)$", path):
            continue
        try:
            lines = open(path, encoding="utf-8").read().splitlines()
        except UnicodeDecodeError:
            continue
        for no, line in enumerate(lines, 1):
            for m in REF.finditer(line):
                for num in re.findall(NUM, m.group(1)):
                    if num not in sections:
                        problems.append("%s:%d: %s: no section %s in docs/BEHAVIOUR.md"
                                        % (os.path.relpath(path, root), no, m.group(0), num))

PATH = re.compile(r"`((?:src|tests|scripts|docs|patches|examples|bench|cmake|packaging)/[^`\s]*)`")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
docs = [spec] + sorted(
    os.path.join(root, "docs/internals", f)
    for f in os.listdir(os.path.join(root, "docs/internals")) if f.endswith(".md"))
for doc in docs:
    rel = os.path.relpath(doc, root)
    for no, line in enumerate(open(doc, encoding="utf-8").read().splitlines(), 1):
        for p in PATH.findall(line):
            if "<" in p or "*" in p:
                continue  # a pattern such as src/io/<name>/
            if not os.path.exists(os.path.join(root, p.rstrip("/"))):
                problems.append("%s:%d: %s does not exist (moved? update this document)"
                                % (rel, no, p))
        for p in LINK.findall(line):
            if re.match(r"[a-z]+:", p):
                continue  # http: and the like
            if not os.path.exists(os.path.join(os.path.dirname(doc), p)):
                problems.append("%s:%d: link %s points nowhere" % (rel, no, p))

print("%d sections; %s" % (len(sections), "%d problem(s)" % len(problems) if problems else "ok"))
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
PY

# A tree that must fail: a reference to a missing section, a missing path.
mkdir -p "$T/bad/docs/internals" "$T/bad/src"
printf '# x\n## 1. One\n### 1.2 Two\n- **1.2.3** three\n' >"$T/bad/docs/BEHAVIOUR.md"
S=SPEC B=BEHAVIOUR # not written out: this file is scanned too
printf '/* %s 1.2, 1.2.3 and %s 1 */\n/* %s 1.2-1.4 */\n' $S $B $S >"$T/bad/src/a.c"
printf 'see `src/a.c` and `src/gone.c`, [x](../BEHAVIOUR.md), [y](missing.md)\n' \
    >"$T/bad/docs/internals/m.md"
python3 "$T/check.py" "$T/bad" >"$T/bad.out"
rc=$?
check_sh "the checker rejects a dangling reference, a missing path and a dead link" \
    "[ $rc = 1 ] && grep -q 'src/a.c:2: $S 1.2-1.4: no section 1.4' '$T/bad.out' &&
     grep -q 'src/gone.c does not exist' '$T/bad.out' && grep -q 'link missing.md' '$T/bad.out' &&
     [ \$(grep -c ':' '$T/bad.out') = 3 ]"

check "every SPEC/BEHAVIOUR reference and internals path resolves" python3 "$T/check.py" .
check_sh "the sources cite the behaviour spec" \
    "[ \$(grep -rlE '(SPEC|BEHAVIOUR) [0-9]' src | wc -l) -ge 10 ]"
finish
