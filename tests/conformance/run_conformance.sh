#!/usr/bin/env bash
# Runs the tag_processor conformance vectors (tag_processor.json, see
# /work/shared/conformance/README.md) against the tagproc binary given as $1.
# ctest calls it once per build (release and ASan) as `run_conformance.sh BINARY
# BUILD_DIR`; further arguments (a case name regex, --keep, -j N) go to conformance.py.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${1:-$here/../../build/tagproc}"
shift || true
if [ $# -gt 0 ] && [ -d "$1" ]; then
    shift # the build directory: not needed here
fi
exec python3 "$here/conformance.py" "$bin" "$here/tag_processor.json" "$@"
