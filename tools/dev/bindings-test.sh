#!/usr/bin/env bash
# Test the language bindings (bindings/node, bindings/python) against an
# installed shared libshmledger, the way users get it.
#
#   tools/dev/bindings-test.sh
#
# 1. builds the library shared (build/ci-bindings) and installs it into a
#    temporary prefix (removed on exit); PKG_CONFIG_PATH points there, so
#    both bindings find it through pkg-config, as documented;
# 2. Node: `npm ci` in bindings/node (node-addon-api, node-gyp from the npm
#    registry, versions from package-lock.json), node-gyp rebuild, then
#    `node --test test/*.test.js` (API, errors, exit after close(), leak
#    loop, a Python participant killed with SIGKILL);
# 3. Python: `python3 -X dev -m unittest` in bindings/python (API, errors,
#    fork, layout against the header, a Python and a Node participant
#    killed); fails if any ResourceWarning is printed; then, when pip and
#    setuptools are there, an offline `pip install --no-build-isolation`
#    of the package into a temporary directory and a smoke test of it.
#
# Knobs: JOBS (default 2), PYTHON (default python3), NODE (default node).
# Ends with a line "bindings: node P/N passed, python P/N passed".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
JOBS=${JOBS:-2}
PYTHON=${PYTHON:-python3}
NODE=${NODE:-node}
BUILD="$ROOT/build/ci-bindings"

for tool in "$NODE" npm "$PYTHON" pkg-config make g++; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bindings-test.sh: '$tool' not found (tools/dev/setup.sh installs it)" >&2
        exit 1
    fi
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/shmledger-bindings.XXXXXX")
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT
PREFIX="$TMP/prefix"

step() { printf '\n-- %s\n' "$*"; }

# --- 1. the library, installed ---------------------------------------------
step "build the shared library, install into a temporary prefix"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBUILD_SHARED_LIBS=ON -DSHL_BUILD_TESTS=OFF -DSHL_BUILD_BENCH=OFF \
    -DSHL_BUILD_TOOLS=OFF >/dev/null
cmake --build "$BUILD" -j "$JOBS"
cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
PC=$(find "$PREFIX" -name shmledger.pc -print -quit)
if [[ -z "$PC" ]]; then
    echo "bindings-test.sh: no shmledger.pc installed under the prefix" >&2
    exit 1
fi
export PKG_CONFIG_PATH="$(dirname "$PC")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
LIBDIR=$(pkg-config --variable=libdir shmledger)
if [[ ! -e "$LIBDIR/libshmledger.so.0" ]]; then
    echo "bindings-test.sh: $LIBDIR/libshmledger.so.0 missing (shared build expected)" >&2
    exit 1
fi
echo "pkg-config: shmledger $(pkg-config --modversion shmledger), libdir $LIBDIR"
# Nothing may find the library but pkg-config / the rpath.
unset LD_LIBRARY_PATH SHMLEDGER_LIB

# --- 2. Node ----------------------------------------------------------------
step "node: npm ci, node-gyp rebuild ($("$NODE" --version))"
cd "$ROOT/bindings/node"
npm ci --ignore-scripts --no-audit --no-fund
GYP_ARGS=(rebuild -j "$JOBS")
# Use the headers of the node that runs the tests when they are installed
# (nodesource's nodejs, Debian's libnode-dev); node-gyp downloads them
# otherwise.
NODE_PREFIX=$(cd "$(dirname "$(command -v "$NODE")")/.." && pwd)
if [[ -z "${npm_config_nodedir:-}" && -f "$NODE_PREFIX/include/node/node_api.h" ]]; then
    GYP_ARGS+=(--nodedir="$NODE_PREFIX")
fi
./node_modules/.bin/node-gyp "${GYP_ARGS[@]}" >"$TMP/node-gyp.log" 2>&1 || {
    cat "$TMP/node-gyp.log" >&2
    exit 1
}
if ! readelf -d build/Release/shmledger.node | grep -q "R.*PATH.*"; then
    echo "bindings-test.sh: the addon has no rpath" >&2
    exit 1
fi

step "node: node --test"
NODE_LOG="$TMP/node-test.log"
rc=0
PYTHON="$PYTHON" timeout 300 "$NODE" --test --test-reporter=tap test/*.test.js \
    2>&1 | tee "$NODE_LOG" || rc=$?
node_pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$NODE_LOG" | tail -n 1)
node_total=$(sed -n 's/^# tests \([0-9]*\)$/\1/p' "$NODE_LOG" | tail -n 1)
if ((rc != 0)); then
    echo "bindings-test.sh: node tests failed (exit $rc)" >&2
    exit "$rc"
fi

# --- 3. Python --------------------------------------------------------------
step "python: $("$PYTHON" --version 2>&1) -X dev -m unittest"
cd "$ROOT/bindings/python"
PY_LOG="$TMP/python-test.log"
rc=0
PYTHONDONTWRITEBYTECODE=1 timeout 300 "$PYTHON" -X dev -m unittest discover \
    -s tests -t . -v 2>&1 | tee "$PY_LOG" || rc=$?
py_total=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\} in .*/\1/p' "$PY_LOG" | tail -n 1)
py_skipped=$(sed -n 's/.*skipped=\([0-9]*\).*/\1/p' "$PY_LOG" | tail -n 1)
if ((rc != 0)); then
    echo "bindings-test.sh: python tests failed (exit $rc)" >&2
    exit "$rc"
fi
if grep -q 'ResourceWarning' "$PY_LOG"; then
    echo "bindings-test.sh: the python tests left a ResourceWarning:" >&2
    grep -n -B2 -A2 'ResourceWarning' "$PY_LOG" >&2
    exit 1
fi

# pip builds the wheel with the installed setuptools (no download): it needs
# setuptools and, before setuptools 70.1, the wheel package (Debian:
# python3-pip brings both).
if "$PYTHON" -m pip --version >/dev/null 2>&1 &&
    "$PYTHON" -c 'import importlib.util as u, setuptools, sys
sys.exit(0 if u.find_spec("wheel") or u.find_spec("setuptools.command.bdist_wheel") else 1)' \
        >/dev/null 2>&1; then
    step "python: pip install --no-build-isolation (offline) and smoke test"
    cp -r "$ROOT/bindings/python" "$TMP/pysrc" # keep build/ and egg-info out of the tree
    PIP_NO_INDEX=1 "$PYTHON" -m pip install --quiet --no-build-isolation --no-deps \
        --disable-pip-version-check --target "$TMP/site" "$TMP/pysrc"
    mkdir -p "$TMP/smoke"
    (cd "$TMP/smoke" && PYTHONPATH="$TMP/site" "$PYTHON" -X dev - "$TMP/site" <<'EOF'
import os, sys, tempfile
import shmledger
assert shmledger.__file__.startswith(sys.argv[1]), shmledger.__file__
base = tempfile.mkdtemp()
with shmledger.Ledger(base, "smoke") as ledger:
    op = ledger.create_operation("installed package")
    with op.start_call("smoke"):
        pass
    op.complete()
shmledger.unlink_segment(base)
os.rmdir(os.path.join(base, "backup")) if not os.listdir(os.path.join(base, "backup")) else None
print("installed package works:", shmledger.__file__, "library", shmledger._lib.lib_path)
EOF
    )
else
    echo "pip, setuptools or wheel missing for $PYTHON: install check skipped" \
        "(PYTHONPATH=bindings/python works)"
fi

printf '\nbindings: node %s/%s passed, python %s/%s passed%s\n' \
    "${node_pass:-?}" "${node_total:-?}" \
    "$(( ${py_total:-0} - ${py_skipped:-0} ))" "${py_total:-?}" \
    "${py_skipped:+ ($py_skipped skipped)}"
