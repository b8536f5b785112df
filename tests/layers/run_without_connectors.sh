#!/usr/bin/env bash
# A build without the kafka and nats connectors (-DTP_WITH_KAFKA=OFF
# -DTP_WITH_NATS=OFF, in BUILD_DIR/without-connectors): it configures
# without librdkafka/libnats, builds tagproc and the unit tests, the binary
# links neither library and knows neither plugin (a config naming one is an
# error listing the others), and its unit tests pass (test_kafka, test_nats
# are left out with their connectors). Release build only (see CMakeLists).
set -u
BIN=$(realpath "${1:-build/tagproc}")
BUILD=$(realpath "${2:-build}")
cd "$(dirname "$0")/../.."
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
. tests/lib.sh

B="$BUILD/without-connectors"
LAUNCHER=
if command -v ccache >/dev/null; then
    LAUNCHER=-DCMAKE_C_COMPILER_LAUNCHER=ccache
    export CCACHE_NOHASHDIR=true # reuse the objects of the main build
fi
check_sh "configures with TP_WITH_KAFKA=OFF TP_WITH_NATS=OFF" \
    "cmake -S . -B '$B' -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTP_WITH_KAFKA=OFF -DTP_WITH_NATS=OFF \
        $LAUNCHER >'$T/cfg' 2>&1 || { tail -20 '$T/cfg'; false; }"
check_sh "the registry lists neither" \
    "! grep -Eq 'tp_(input|output)_(kafka|nats)' '$B/builtin_plugins.c' &&
     grep -q 'tp_input_mqtt' '$B/builtin_plugins.c'"
UNITS=$(sed -n 's/^add_test(unit\.\([a-z_]*\) .*/\1/p' "$B/CTestTestfile.cmake" | tr '\n' ' ')
# (the checkout's and the build's own paths are left out: a clone in
# .../kafka-work/ is fine)
check_sh "no kafka/nats test is registered" \
    "[ -n '$UNITS' ] && ! sed -e 's|$BUILD||g' -e 's|$PWD||g' '$B/CTestTestfile.cmake' | grep -Eq 'kafka|nats'"
check_sh "tagproc and the unit tests build" \
    "cmake --build '$B' -j 2 --target tagproc $UNITS >'$T/build' 2>&1 || { tail -30 '$T/build'; false; }"
check_sh "the binary links neither librdkafka nor libnats" \
    "ldd '$B/tagproc' >'$T/ldd' && ! grep -Eq 'librdkafka|libnats' '$T/ldd' && grep -q libssl '$T/ldd'"
printf 'input:\n  kafka:\n    addresses: [127.0.0.1:9]\n    topics: [t]\n    consumer_group: g\n' >"$T/k.yaml"
check_sh "a kafka input is unknown, the others are listed" \
    "! '$B/tagproc' lint '$T/k.yaml' >'$T/lint' 2>&1 &&
     grep -q 'kafka' '$T/lint' && grep -q 'stdin, file, simulator, mqtt, opcua' '$T/lint' ||
     { cat '$T/lint'; false; }"
check_sh "stdin -> stdout still runs" \
    "printf '{\"payload\":1}\n' | '$B/tagproc' examples/stdin-passthrough.yaml | grep -qx '{\"payload\":1,\"meta\":{}}'"
check_sh "its unit tests pass" \
    "(cd '$B' && ctest -R '^unit\\.' -j 2 >'$T/ctest' 2>&1) || { tail -30 '$T/ctest'; false; }"
finish
