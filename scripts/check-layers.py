#!/usr/bin/env python3
"""Checks the layering of src/ (docs/internals/plugins.md): builds a graph
whose nodes are modules (a header and the files implementing it) and whose
edges are #include "..." lines and calls (a symbol an object file uses that
another object file defines, from `nm` of the objects in BUILD_DIR), then
fails on an edge to a layer the module's layer may not use, and on a cycle
between modules. Usage: check-layers.py [BUILD_DIR] (default build/; without
objects, includes only). Exit 0 clean, 1 findings, 2 usage error."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")

# What each layer may use (itself included). The layers, bottom up:
# tp_core <- tp_config <- tp_pipeline, tp_js <- tp_processors, tp_io
# <- tp_ops <- cli (the files directly in src/).
ALLOWED = {
    "core": {"core"},
    "config": {"core", "config"},
    "pipeline": {"core", "config", "pipeline"},
    "js": {"core", "config", "js"},
    "processors": {"core", "config", "js", "processors"},
    "io": {"core", "config", "io"},
    "ops": {"core", "config", "pipeline", "js", "processors", "io", "ops"},
    "cli": {"core", "config", "pipeline", "js", "processors", "io", "ops", "cli"},
}


# Findings being removed by work in progress, reported but not failing:
# (text the finding contains, why). Delete an entry once its work landed.
PENDING = []


def layer_of(module):
    parts = module.split("/")
    return "cli" if len(parts) == 1 else parts[0]


def module_of(path):
    """The module of a file, src-relative: a file belongs to the header
    DIR/P.h for the shortest prefix P of its name (split at "_") that has a
    header ("core/json_scan.c" and "core/json_internal.h" are "core/json",
    "processors/uns_text.c" is "processors/uns"); the files directly in src/
    are one module, the program ("cli")."""
    rel = os.path.relpath(path, SRC)
    directory, name = os.path.split(os.path.splitext(rel)[0])
    if not directory:
        return "cli"
    words = name.split("_")
    for i in range(1, len(words) + 1):
        prefix = "_".join(words[:i])
        if os.path.exists(os.path.join(SRC, directory, prefix + ".h")):
            return directory + "/" + prefix
    return directory + "/" + name


def sources():
    for dirpath, _, files in os.walk(SRC):
        for f in sorted(files):
            if f.endswith((".c", ".h")):
                yield os.path.join(dirpath, f)


def include_edges():
    edges = []
    for path in sources():
        with open(path, encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                if not m:
                    continue
                target = os.path.join(SRC, m.group(1))
                if not os.path.exists(target):
                    target = os.path.join(os.path.dirname(path), m.group(1))
                if not os.path.exists(target):
                    continue  # generated or third party
                edges.append((module_of(path), module_of(target),
                              "%s:%d: includes %s" % (os.path.relpath(path, ROOT), lineno,
                                                      m.group(1))))
    return edges


def objects(build):
    """(module, object path) for every object file of src/ under build/CMakeFiles."""
    out = []
    top = os.path.join(build, "CMakeFiles")
    for dirpath, _, files in os.walk(top):
        for f in files:
            if not f.endswith(".c.o"):
                continue
            full = os.path.join(dirpath, f)
            m = re.search(r"/CMakeFiles/(tp_[a-z]+|tagproc)\.dir/src/(.*\.c)\.o$", full)
            if m and os.path.exists(os.path.join(SRC, m.group(2))):  # not a stale object
                out.append((module_of(os.path.join(SRC, m.group(2))), full))
    return out


def call_edges(build):
    defined, used = {}, []
    for module, obj in objects(build):
        res = subprocess.run(["nm", "--defined-only", "-g", obj], capture_output=True, text=True)
        for line in res.stdout.splitlines():
            parts = line.split()
            if len(parts) == 3:
                defined.setdefault(parts[2], module)
        res = subprocess.run(["nm", "-u", obj], capture_output=True, text=True)
        for line in res.stdout.splitlines():
            parts = line.split()
            if parts:
                used.append((module, parts[-1]))
    edges = []
    for module, sym in used:
        target = defined.get(sym)
        if target and target != module:
            edges.append((module, target, "%s calls %s (in %s)" % (module, sym, target)))
    return edges


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(__doc__)
        return 2
    build = argv[1] if len(argv) == 2 else os.path.join(ROOT, "build")
    edges = include_edges()
    n_includes = len(edges)
    if os.path.isdir(os.path.join(build, "CMakeFiles")):
        edges += call_edges(build)
    findings = []
    graph = {}
    for src, dst, why in edges:
        if src == dst:
            continue
        graph.setdefault(src, set()).add(dst)
        if layer_of(dst) not in ALLOWED[layer_of(src)]:
            findings.append("upward: %s (%s -> %s)" % (why, layer_of(src), layer_of(dst)))
    for comp in cycles(graph):
        findings.append("cycle between modules: %s" % " <-> ".join(comp))
    failing = []
    for f in sorted(set(findings)):
        why = [w for text, w in PENDING if text in f]
        if why:
            print("pending (%s): %s" % (why[0], f))
        else:
            print(f)
            failing.append(f)
    print("check-layers: %d modules, %d include and %d call edges: %s" %
          (len({m for e in edges for m in e[:2]}), n_includes, len(edges) - n_includes,
           "%d finding(s)" % len(failing) if failing else "ok"))
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
