#!/usr/bin/env bash
# Install shmledger to a temporary prefix and use it as an outside program
# would: the "consumer" stage of tools/dev/test.sh.
#
#   tools/dev/consumer-test.sh
#
# 1. configure + build build/ci-consumer (RelWithDebInfo, -Werror, tools on,
#    tests and benchmarks off), `cmake --install --prefix <tmp>`;
# 2. checks the installed files: libshmledger.so.0 (SONAME), libshmledger.a,
#    headers, shmledger.pc, the CMake package, the man pages;
# 3. `nm -D --defined-only` of the installed .so: exactly the SHL_API
#    functions of the installed header, every one shl_*, no shl__ internal;
# 4. builds tests/consumer/app.c
#      - with pkg-config:   cc app.c $(pkg-config --cflags --libs shmledger)
#                           (+ -Wl,-rpath,<libdir>, as any program linked
#                           against a library outside the linker's default
#                           path needs to run without LD_LIBRARY_PATH)
#      - fully static:      cc -static app.c $(pkg-config --cflags --static --libs shmledger)
#      - with CMake:        tests/consumer/CMakeLists.txt, find_package(shmledger):
#                           shmledger::shmledger and shmledger::shmledger_static
#    and runs each one (they open a ledger in a temp dir, create an
#    operation, start/end a call, complete, close);
# 5. runs the installed shmledger --version / --help and shmledger-top
#    --help / --once.
# Everything runs with LD_LIBRARY_PATH unset; each dynamic program must
# resolve libshmledger.so.0 inside the prefix (ldd). The temporary prefix is
# removed on exit. Knobs: JOBS (default 2), CONSUMER_BUILD_DIR (default
# build/ci-consumer). Last line: one summary ("consumer-test: ok: ...").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

JOBS=${JOBS:-2}
BUILD=${CONSUMER_BUILD_DIR:-$ROOT/build/ci-consumer}
unset LD_LIBRARY_PATH LD_PRELOAD
export LC_ALL=C

WORK=$(mktemp -d "${TMPDIR:-/tmp}/shmledger-consumer.XXXXXX")
cleanup() {
    # A ledger left behind by a failed step: drop its segment too.
    if [[ -x "${PREFIX:-}/bin/shmledger" && -d "$WORK/ledger" ]]; then
        "$PREFIX/bin/shmledger" --base "$WORK/ledger" gc --unlink --force >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
PREFIX="$WORK/prefix"

step() { printf '\n-- consumer-test: %s\n' "$*"; }
fail() {
    printf 'consumer-test: FAILED: %s\n' "$*" >&2
    exit 1
}

# in_prefix PROGRAM: every libshmledger the program loads comes from $PREFIX.
in_prefix() {
    local out
    out=$(ldd "$1") || fail "ldd $1"
    grep -q 'libshmledger\.so\.0 => '"$PREFIX"'/' <<<"$out" ||
        fail "$1 does not load libshmledger.so.0 from the prefix:"$'\n'"$out"
}

# no_shared_shmledger PROGRAM: the program does not need libshmledger.so.
no_shared_shmledger() {
    if readelf -d "$1" | grep -q 'NEEDED.*libshmledger'; then
        fail "$1 needs libshmledger.so although it was linked statically"
    fi
}

# ---------------------------------------------------------------------------
step "configure, build, install to a temporary prefix"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHL_WERROR=ON \
    -DSHL_BUILD_TESTS=OFF -DSHL_BUILD_BENCH=OFF -DSHL_BUILD_TOOLS=ON
cmake --build "$BUILD" -j "$JOBS"
cmake --install "$BUILD" --prefix "$PREFIX"

PC=$(find "$PREFIX" -name shmledger.pc -path '*/pkgconfig/*' | head -n 1)
[[ -n "$PC" ]] || fail "no shmledger.pc installed"
PKG_CONFIG_PATH=$(dirname "$PC")
export PKG_CONFIG_PATH
LIBDIR=$(pkg-config --variable=libdir shmledger)
LIBDIR=$(cd "$LIBDIR" && pwd)   # ${pcfiledir}/../.. -> a plain path
INCDIR=$(pkg-config --variable=includedir shmledger)
VERSION=$(pkg-config --modversion shmledger)

# ---------------------------------------------------------------------------
step "installed files"
for f in "$LIBDIR/libshmledger.so" "$LIBDIR/libshmledger.so.0" \
    "$LIBDIR/libshmledger.a" "$INCDIR/shmledger/shmledger.h" \
    "$INCDIR/shmledger/version.h" "$LIBDIR/cmake/shmledger/shmledgerConfig.cmake" \
    "$PREFIX/bin/shmledger" "$PREFIX/bin/shmledger-top" \
    "$PREFIX/share/man/man1/shmledger.1" "$PREFIX/share/man/man1/shmledger-top.1"; do
    [[ -e "$f" ]] || fail "not installed: ${f#"$PREFIX"/}"
done
SONAME=$(readelf -d "$LIBDIR/libshmledger.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ "$SONAME" == libshmledger.so.0 ]] || fail "SONAME is '$SONAME', not libshmledger.so.0"
echo "SONAME $SONAME, version $VERSION, libdir ${LIBDIR#"$PREFIX"/}"

# ---------------------------------------------------------------------------
step "exported symbols (nm -D --defined-only)"
nm -D --defined-only "$LIBDIR/libshmledger.so" | awk '{print $NF}' | sort -u >"$WORK/exported"
grep -ohE '^SHL_API[^(]*\(' "$INCDIR"/shmledger/*.h |
    grep -oE 'shl_[A-Za-z0-9_]+\($' | tr -d '(' | sort -u >"$WORK/declared"
NEXPORTED=$(wc -l <"$WORK/exported")
NDECLARED=$(wc -l <"$WORK/declared")
if grep -v '^shl_[a-z]' "$WORK/exported"; then
    fail "symbols above are exported and are not shl_* API"
fi
if grep '^shl__' "$WORK/exported"; then
    fail "internal shl__ symbols above are exported"
fi
if ! diff -u "$WORK/declared" "$WORK/exported"; then
    fail "exported symbols differ from the SHL_API declarations of the header (- declared, + exported)"
fi
echo "$NEXPORTED symbols exported = the $NDECLARED SHL_API functions of the header"

# ---------------------------------------------------------------------------
step "pkg-config consumer, shared (default)"
APP="$ROOT/tests/consumer/app.c"
echo "cc $APP \$(pkg-config --cflags --libs shmledger) -Wl,-rpath,$LIBDIR"
echo "  pkg-config --libs: $(pkg-config --libs shmledger)"
# shellcheck disable=SC2046 # word splitting of pkg-config's output is wanted
cc -Wall -Werror -o "$WORK/app_pc" "$APP" $(pkg-config --cflags --libs shmledger) \
    -Wl,-rpath,"$LIBDIR"
readelf -d "$WORK/app_pc" | grep -q 'NEEDED.*\[libshmledger\.so\.0\]' ||
    fail "app_pc does not need libshmledger.so.0"
in_prefix "$WORK/app_pc"
mkdir -p "$WORK/base-pc"
"$WORK/app_pc" "$WORK/base-pc" "pkg-config shared"

step "pkg-config consumer, static (cc -static, pkg-config --static)"
echo "cc -static $APP \$(pkg-config --cflags --static --libs shmledger)"
echo "  pkg-config --static --libs: $(pkg-config --static --libs shmledger)"
# shellcheck disable=SC2046
cc -static -Wall -Werror -o "$WORK/app_pc_static" "$APP" \
    $(pkg-config --cflags --static --libs shmledger)
if readelf -d "$WORK/app_pc_static" 2>/dev/null | grep -q NEEDED; then
    fail "app_pc_static is not a static executable"
fi
mkdir -p "$WORK/base-pc-static"
"$WORK/app_pc_static" "$WORK/base-pc-static" "pkg-config static"

# ---------------------------------------------------------------------------
step "CMake consumer (find_package(shmledger))"
cmake -S "$ROOT/tests/consumer" -B "$WORK/cmake-app" \
    -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS="-Wall -Werror"
cmake --build "$WORK/cmake-app" -j "$JOBS"
in_prefix "$WORK/cmake-app/app_default"
mkdir -p "$WORK/base-cmake"
"$WORK/cmake-app/app_default" "$WORK/base-cmake" "CMake shmledger::shmledger"
[[ -x "$WORK/cmake-app/app_static" ]] || fail "shmledger::shmledger_static is not exported"
no_shared_shmledger "$WORK/cmake-app/app_static"
mkdir -p "$WORK/base-cmake-static"
"$WORK/cmake-app/app_static" "$WORK/base-cmake-static" "CMake shmledger::shmledger_static"

# ---------------------------------------------------------------------------
step "installed commands"
for tool in shmledger shmledger-top; do
    readelf -d "$PREFIX/bin/$tool" | grep -E 'RUNPATH|RPATH' || fail "$tool has no RUNPATH"
    in_prefix "$PREFIX/bin/$tool"
done
out=$("$PREFIX/bin/shmledger" --version)
[[ "$out" == "shmledger $VERSION" ]] || fail "shmledger --version printed '$out'"
echo "$out"
"$PREFIX/bin/shmledger" --help >"$WORK/help.txt"
grep -q '^Usage: shmledger ' "$WORK/help.txt" || fail "shmledger --help"
"$PREFIX/bin/shmledger-top" --help >"$WORK/top-help.txt"
grep -q '^Usage: shmledger-top ' "$WORK/top-help.txt" || fail "shmledger-top --help"
mkdir -p "$WORK/ledger"
op=$("$PREFIX/bin/shmledger" --base "$WORK/ledger" create -d "consumer test")
"$PREFIX/bin/shmledger-top" --base "$WORK/ledger" --once </dev/null >"$WORK/top.txt"
grep -qF "$op" "$WORK/top.txt" || fail "shmledger-top --once does not show $op"
"$PREFIX/bin/shmledger" --base "$WORK/ledger" gc --unlink >/dev/null
echo "shmledger --version/--help, shmledger-top --help/--once ok"

echo
echo "consumer-test: ok: shmledger $VERSION installed (SONAME $SONAME + static archive)," \
    "$NEXPORTED symbols exported (all SHL_API), 4 programs built and run" \
    "(pkg-config shared/static, CMake shmledger::shmledger/_static)," \
    "installed commands run without LD_LIBRARY_PATH"
