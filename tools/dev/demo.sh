#!/usr/bin/env bash
# Install dependencies, build a Release tree in build/release and run the
# embedded demo scenario:  tools/dev/demo.sh [demo options...]
# (runs `build/release/shmledger demo "$@"`). Build output goes to
# build/release/build.log unless the build fails.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

bash tools/dev/setup.sh >&2
mkdir -p build/release
echo "demo.sh: building build/release (log: build/release/build.log)" >&2
if ! {
    cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release \
        -DSHL_BUILD_TESTS=OFF -DSHL_BUILD_BENCH=OFF -DSHL_BUILD_TOOLS=ON &&
        cmake --build build/release -j "${JOBS:-2}"
} >build/release/build.log 2>&1; then
    cat build/release/build.log >&2
    echo "demo.sh: build failed" >&2
    exit 1
fi

exec build/release/shmledger demo "$@"
