#!/usr/bin/env bash
# docs/CONFIG.md is generated from the option tables (`tagproc config-doc`);
# this test fails when someone changed an option and forgot to regenerate it.
set -u
BIN=$(realpath "${1:-build/tagproc}")
cd "$(dirname "$0")/../.."
if "$BIN" config-doc | diff -u docs/CONFIG.md -; then
    echo "ok docs/CONFIG.md is current"
else
    echo "FAIL docs/CONFIG.md is stale: run  build/tagproc config-doc > docs/CONFIG.md"
    exit 1
fi
