#!/usr/bin/env bash
# Build the libFuzzer targets (clang 14, -fsanitize=fuzzer,address,undefined)
# and run each for a bounded time.
#
#   tools/dev/fuzz.sh                 every target of tests/fuzz
#   tools/dev/fuzz.sh json ids        only fuzz_json, fuzz_ids
#
# Targets (tests/fuzz/fuzz_<name>.c):
#   segment  an arbitrary segment image: validate, then every read-only API
#   json     the operation-JSON reader (shl_snapshot_from_json), round trip
#   ids      operation/participant id validation, temp-path normalisation
#   render   log/debug/trail line rendering (shl__event_render)
#
# Corpus: build/fuzz/corpus/<name> (grows; kept between runs), seeded from
# the committed tests/fuzz/corpus/<name>. A crash input is saved under
# build/fuzz/crashes/<name>/; to make it a regression input, copy it into
# tests/fuzz/regress/<name>/ (ctest -L fuzz in build/fuzz replays the seeds
# and the regressions).
#
# Environment:
#   FUZZ_SECONDS=60        per target (-max_total_time)
#   BUILD=<dir>            build directory (default build/fuzz)
#   JOBS=2                 build parallelism
#   SHL_FUZZ_INVARIANTS=0  memory safety only (see tests/fuzz/fuzz_common.h)
#   FUZZ_ARGS="..."        extra libFuzzer flags
#
# Prints one line per target: "fuzz: <name> execs=N seconds=S
# corpus=N crashes=N". Exit status 1 when any target crashed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build/fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
JOBS=${JOBS:-2}
read -r -a EXTRA <<<"${FUZZ_ARGS:-}"

if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz.sh: clang is not installed (tools/dev/setup.sh)" >&2
    exit 2
fi

cmake -S "$ROOT" -B "$BUILD" \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=Debug -DSHL_FUZZ=ON -DSHL_WERROR=ON \
    -DSHL_BUILD_TESTS=OFF -DSHL_BUILD_BENCH=OFF -DSHL_BUILD_TOOLS=OFF \
    -DSHL_BUILD_SHARED=OFF >/dev/null # the targets link the objects; an
    # instrumented shared library would need the sanitizer runtimes at link
cmake --build "$BUILD" -j "$JOBS"

TARGETS=("$@")
if ((${#TARGETS[@]} == 0)); then
    for f in "$ROOT"/tests/fuzz/fuzz_*.c; do
        n=$(basename "$f" .c)
        TARGETS+=("${n#fuzz_}")
    done
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
declare -a LINES=()
for t in "${TARGETS[@]}"; do
    bin="$BUILD/tests/fuzz/fuzz_$t"
    seeds="$ROOT/tests/fuzz/corpus/$t"
    work="$BUILD/corpus/$t"
    crashes="$BUILD/crashes/$t"
    log="$BUILD/logs/fuzz_$t.log"
    mkdir -p "$work" "$crashes" "$(dirname "$log")"
    if [[ ! -x "$bin" ]]; then
        echo "fuzz.sh: no target $t ($bin)" >&2
        exit 2
    fi
    maxlen=4096
    [[ "$t" == segment ]] && maxlen=65536
    if [[ "$t" == segment && -z "$(ls -A "$seeds" 2>/dev/null)" ]]; then
        mkdir -p "$seeds"
        SHL_FUZZ_MAKE_SEED="$seeds/live-small.bin" "$bin"
    fi
    echo "== fuzz $t: ${FUZZ_SECONDS}s (log $log)"
    before=$(find "$crashes" -type f | wc -l)
    rc=0
    "$bin" -max_total_time="$FUZZ_SECONDS" -max_len="$maxlen" \
        -timeout=25 -print_final_stats=1 -artifact_prefix="$crashes/" \
        "${EXTRA[@]}" "$work" "$seeds" >"$log" 2>&1 || rc=$?
    after=$(find "$crashes" -type f | wc -l)
    execs=$(grep -E 'stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}' || true)
    secs=$(grep -E 'Done [0-9]+ runs in' "$log" | tail -1 | sed -E 's/.* in ([0-9]+) second.*/\1/' || true)
    ncorpus=$(find "$work" -type f | wc -l)
    line="fuzz: $t execs=${execs:-?} seconds=${secs:-$FUZZ_SECONDS} corpus=$ncorpus crashes=$((after - before))"
    if ((rc != 0)); then
        line+=" FAILED (exit $rc):"
        line+=" $(grep -m1 -E 'ERROR: (AddressSanitizer|libFuzzer|UndefinedBehavior)|runtime error|fuzz invariant broken' "$log" | cut -c1-200 || true)"
        status=1
        # the stack of the first failure, for the reader of the CI log
        grep -m1 -A25 -E 'ERROR: (AddressSanitizer|libFuzzer)|runtime error|fuzz invariant broken' "$log" | sed 's/^/    /' || true
    fi
    echo "$line"
    LINES+=("$line")
done
printf '%s\n' "${LINES[@]}"
exit "$status"
