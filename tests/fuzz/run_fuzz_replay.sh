#!/usr/bin/env bash
# Replays every fuzz corpus with the gcc-built replay programs and checks the
# corpora stay small (< 200 files, < 1 MB each). ctest runs it as
# fuzz.run_fuzz_replay with $1 = tagproc binary (unused) and $2 = build dir;
# by hand: tests/fuzz/run_fuzz_replay.sh build/tagproc build
set -euo pipefail
cd "$(dirname "$0")/../.."
bdir=${2:-build}
rc=0
for src in tests/fuzz/fuzz_*.c; do
    t=$(basename "$src" .c)
    corpus="tests/fuzz/corpus/$t"
    files=$(find "$corpus" -type f 2>/dev/null | wc -l)
    bytes=$(find "$corpus" -type f -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}')
    if [ "$files" -eq 0 ]; then
        echo "FAIL $t: no corpus in $corpus" >&2
        rc=1
        continue
    fi
    if [ "$files" -ge 200 ] || [ "$bytes" -ge 1048576 ]; then
        echo "FAIL $t: corpus too big ($files files, $bytes bytes; limit < 200 files, < 1 MB)" >&2
        rc=1
    fi
    if [ ! -x "$bdir/${t}_replay" ]; then
        echo "FAIL $t: $bdir/${t}_replay not built" >&2
        rc=1
        continue
    fi
    if "$bdir/${t}_replay" "$corpus" 2>"$bdir/${t}_replay.log"; then
        echo "ok   $t: $files inputs, $bytes bytes"
    else
        echo "FAIL $t: replay failed; last lines of $bdir/${t}_replay.log:" >&2
        tail -n 30 "$bdir/${t}_replay.log" >&2
        rc=1
    fi
done
exit $rc
