#!/usr/bin/env bash
# Install every Debian package needed to build, test and benchmark shmledger.
#
# Idempotent: when every package is already installed, apt is not touched at
# all (no network, no root needed). Otherwise runs `apt-get update` once and
# `apt-get install -y` for the whole list. Uses sudo only when not root.
#
# Usage: tools/dev/setup.sh            install what is missing
#        tools/dev/setup.sh --list     print the package list and exit
#        tools/dev/setup.sh --check    exit 1 (and name them) if any is missing
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
    # toolchain and build
    build-essential     # gcc 12, g++, make, libc6-dev
    cmake               # >= 3.25 (Debian 12 ships 3.25.1)
    pkg-config          # also the consumer stage (shmledger.pc)
    binutils            # nm, readelf: consumer stage checks the installed library
    git
    python3             # tools/dev/check-layers.py (the layers stage)
    # library dependencies
    libxxhash-dev       # XXH3_64
    libjansson-dev      # JSON snapshots / archive
    libncurses-dev      # ncursesw, for shmledger-top
    # tests, benchmarks, tools
    libcmocka-dev       # unit/proc tests (cmocka 1.1.5)
    libbenchmark-dev    # bench/*.cc (Google Benchmark)
    valgrind            # VALGRIND=1 stage of tools/dev/test.sh
    tmux                # demos / multi-process manual testing
    clang-format        # format-check target (clang-format 14)
    procps              # ps/pgrep used by scripts and tests
    util-linux          # setarch (TSan stage disables ASLR)
    libasan8            # gcc 12 sanitizer runtimes (ASan, UBSan, TSan
    libubsan1           #   stages; gcc pulls them in, listed so a stage
    libtsan2            #   never depends on that)
    # bindings stage (tools/dev/bindings-test.sh); node-gyp also needs
    # python3, make and g++
    #                     python3 (listed above) runs the Python package
    python3-pip         # offline `pip install` check (brings setuptools, wheel)
    clang               # clang 14: the libFuzzer targets (tools/dev/fuzz.sh,
    libclang-rt-14-dev  #   fuzz stage); libFuzzer and clang's sanitizer runtimes
)

# Node.js and npm for the bindings stage. Only when either is missing:
# a machine may have nodesource's `nodejs`, which bundles npm and conflicts
# with Debian's `npm` package, so nothing is added next to it. Otherwise
# Debian's nodejs + npm, and libnode-dev (the headers node-gyp builds the
# addon against, so it never downloads them).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    node_pkg=$(dpkg-query -W -f='${Version}' nodejs 2>/dev/null || true)
    if [[ "$node_pkg" == *nodesource* ]]; then
        echo "setup.sh: nodesource's nodejs $node_pkg is installed but node/npm" \
            "is missing from PATH; reinstall it (apt-get install --reinstall nodejs)" >&2
    else
        PACKAGES+=(nodejs npm libnode-dev)
    fi
fi

missing_packages() {
    local pkg status
    for pkg in "${PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        if [[ "$status" != "installed" ]]; then
            printf '%s\n' "$pkg"
        fi
    done
}

case "${1:-}" in
--list)
    printf '%s\n' "${PACKAGES[@]}"
    exit 0
    ;;
--check)
    mapfile -t MISSING < <(missing_packages)
    if ((${#MISSING[@]})); then
        echo "setup.sh: missing packages: ${MISSING[*]}" >&2
        exit 1
    fi
    exit 0
    ;;
"") ;;
*)
    echo "usage: $0 [--list|--check]" >&2
    exit 2
    ;;
esac

mapfile -t MISSING < <(missing_packages)
if ((${#MISSING[@]} == 0)); then
    echo "setup.sh: all ${#PACKAGES[@]} packages already installed"
    exit 0
fi

echo "setup.sh: installing: ${MISSING[*]}"
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "setup.sh: not root and sudo is not available;" \
            "install as root: apt-get install -y ${MISSING[*]}" >&2
        exit 1
    fi
    SUDO=(sudo DEBIAN_FRONTEND=noninteractive)
fi

"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y --no-install-recommends "${MISSING[@]}"

mapfile -t STILL < <(missing_packages)
if ((${#STILL[@]})); then
    echo "setup.sh: still missing after install: ${STILL[*]}" >&2
    exit 1
fi
echo "setup.sh: done"
