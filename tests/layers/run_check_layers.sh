#!/usr/bin/env bash
# scripts/check-layers.py on this tree (includes, and calls from the objects
# of BUILD_DIR) finds nothing; on a copy of src/ with an upward include, a
# cycle between two core modules, or an include between sibling layers, it
# fails naming each.
set -u
BUILD=$(realpath "${2:-build}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/lib.sh

check_sh "the tree has no upward edge and no cycle (includes and calls)" \
    "python3 scripts/check-layers.py '$BUILD' >'$T/out' || { cat '$T/out'; false; }"
check_sh "it read the objects (call edges counted)" \
    "grep -Eq 'include and [1-9][0-9]* call edges: ok' '$T/out'"

# A copy of the sources with one fault each (includes only: no objects there).
fault() { # name, file, line to append
    rm -rf "$T/copy" && mkdir -p "$T/copy/scripts" && cp -r src "$T/copy/src" &&
        cp scripts/check-layers.py "$T/copy/scripts/" && printf '%s\n' "$3" >>"$T/copy/src/$2"
}
fault upward core/buf.c '#include "ops/http.h"'
check_sh "an upward include fails, naming file and line" \
    "! python3 '$T/copy/scripts/check-layers.py' '$T/none' >'$T/o1' &&
     grep -Eq '^upward: src/core/buf.c:[0-9]+: includes ops/http.h \(core -> ops\)' '$T/o1'"
fault cycle core/error.h '#include "core/buf.h"' # buf.c includes core/error.h
check_sh "an include cycle between modules fails, naming them" \
    "! python3 '$T/copy/scripts/check-layers.py' '$T/none' >'$T/o2' &&
     grep -q '^cycle between modules: core/buf <-> core/error' '$T/o2'"
fault sideways io/lines.c '#include "js/engine.h"'
check_sh "io may not use js (siblings)" \
    "! python3 '$T/copy/scripts/check-layers.py' '$T/none' >'$T/o3' &&
     grep -q 'includes js/engine.h (io -> js)' '$T/o3'"
finish
