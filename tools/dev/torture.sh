#!/usr/bin/env bash
# The torture tier for longer than CI runs it (issue 12).
#
#   tools/dev/torture.sh                 30 minutes, a fresh seed
#   SHL_TORTURE_SECONDS=7200 tools/dev/torture.sh
#   SHL_TORTURE_SEED=1234 tools/dev/torture.sh     rerun a seed
#
# Builds build/ci-debug (the Debug tree of tools/dev/test.sh) if needed and
# runs tests/stress/test_torture directly: random SIGKILLs of workers, of
# the snapshotter holder and of the initiator (asynchronous, and at the
# crash points inside locked mutations), with the checks after each batch
# (see the head of tests/stress/test_torture.c). Prints each violation (the
# first few of each kind), then
#   torture: kills=N ops_failed=N ops_finished=N lines_checked=N violations=N
# and the count per violation kind. Exit status non-zero on any violation.
#
# Environment: SHL_TORTURE_SECONDS (default 1800), SHL_TORTURE_SEED,
# SHL_TORTURE_BATCH_MS (10000), SHL_TORTURE_RECLAIM_MS (5000),
# SHL_TORTURE_WORKERS (4), SHL_TORTURE_KEEP=1 (keep the base directory of a
# batch that found violations), SHL_TORTURE_RING_POINT, SHL_TORTURE_WRITE_SEAM
# (see tests/stress/test_torture.c), BUILD (default build/ci-debug), JOBS (2).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build/ci-debug}
JOBS=${JOBS:-2}
export SHL_TORTURE_SECONDS=${SHL_TORTURE_SECONDS:-1800}

if [[ ! -f "$BUILD/CMakeCache.txt" ]]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DSHL_WERROR=ON
fi
cmake --build "$BUILD" -j "$JOBS" --target test_stress_torture
mkdir -p "$BUILD/testtmp"
export SHL_TEST_TMPDIR=${SHL_TEST_TMPDIR:-$BUILD/testtmp}
exec "$BUILD/tests/stress/test_torture"
