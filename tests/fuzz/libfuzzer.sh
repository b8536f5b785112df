#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets with clang into build-fuzz/ and
# runs each for FUZZ_SECONDS (default 60). The repository corpus
# tests/fuzz/corpus/<target>/ seeds every run; new inputs go to
# build-fuzz/corpus/<target>/ and crashes to build-fuzz/artifacts/<target>/.
# FUZZ_TARGETS="fuzz_config ..." picks targets; FUZZ_JOBS runs parallel jobs.
set -euo pipefail
cd "$(dirname "$0")/../.."

secs=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}

# clang with the libFuzzer runtime; installed here because only fuzzing needs it.
probe() {
    echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }' |
        clang -fsanitize=fuzzer,address,undefined -x c - -o /dev/null >/dev/null 2>&1
}
if ! command -v clang >/dev/null || ! probe; then
    echo "fuzz: installing clang and libclang-rt-14-dev" >&2
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get install -y clang libclang-rt-14-dev >/dev/null
    probe || { echo "fuzz: clang cannot link -fsanitize=fuzzer" >&2; exit 1; }
fi

CC=clang cmake -S . -B build-fuzz -DTP_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=${FUZZ_TARGETS:-$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')}
# shellcheck disable=SC2086
cmake --build build-fuzz -j "$(nproc)" --target $targets

failed=""
for t in $targets; do
    mkdir -p "build-fuzz/corpus/$t" "build-fuzz/artifacts/$t"
    args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1
        -artifact_prefix="build-fuzz/artifacts/$t/")
    [ -f "tests/fuzz/$t.dict" ] && args+=(-dict="tests/fuzz/$t.dict")
    if [ -f "tests/fuzz/$t.options" ]; then
        read -r -a extra <"tests/fuzz/$t.options" || true
        args+=("${extra[@]}")
    fi
    [ "$jobs" -gt 1 ] && args+=(-fork="$jobs")
    echo "fuzz: $t for ${secs}s" >&2
    if ! "build-fuzz/$t" "${args[@]}" "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" \
        2>"build-fuzz/$t.log"; then
        failed="$failed $t"
        tail -60 "build-fuzz/$t.log" >&2
    else
        grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' \
            "build-fuzz/$t.log" | sed "s/^/fuzz: $t: /" >&2 || true
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: FAILED:$failed (reproducers in build-fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: all targets ran ${secs}s without a finding" >&2
