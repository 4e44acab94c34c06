# Dependencies of shmledger. Every missing one stops the configure step with
# a message naming the Debian package that provides it; tools/dev/setup.sh
# installs them all.
#
# Sets SHL_LIB_DEPS: what libshmledger (and everything built against its
# internals) links. Imported targets: PkgConfig::SHL_URCU, PkgConfig::SHL_URCU_CDS,
# PkgConfig::SHL_XXHASH, PkgConfig::SHL_JANSSON, Threads::Threads; on demand
# PkgConfig::SHL_CMOCKA (shl_require_cmocka), PkgConfig::SHL_NCURSESW
# (shl_require_ncursesw), benchmark::benchmark (shl_require_benchmark).

function(_shl_missing what debpkg)
    message(FATAL_ERROR
        "${what} not found: install the Debian package ${debpkg} "
        "(tools/dev/setup.sh does)")
endfunction()

find_package(PkgConfig QUIET)
if(NOT PKG_CONFIG_FOUND)
    _shl_missing("pkg-config" "pkg-config")
endif()

# shl_pkg(PREFIX MODULE DEBPKG): pkg_check_modules(PREFIX IMPORTED_TARGET MODULE)
# or FATAL_ERROR naming DEBPKG. Imported target: PkgConfig::PREFIX.
macro(shl_pkg prefix module debpkg)
    if(NOT TARGET PkgConfig::${prefix})
        pkg_check_modules(${prefix} QUIET IMPORTED_TARGET ${module})
        if(NOT ${prefix}_FOUND)
            _shl_missing("${module}" "${debpkg}")
        endif()
        message(STATUS "Found ${module} ${${prefix}_VERSION}")
    endif()
endmacro()

shl_pkg(SHL_URCU     liburcu     liburcu-dev)
shl_pkg(SHL_URCU_CDS liburcu-cds liburcu-dev)
shl_pkg(SHL_XXHASH   libxxhash   libxxhash-dev)
shl_pkg(SHL_JANSSON  jansson     libjansson-dev)

set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads QUIET)
if(NOT Threads_FOUND)
    _shl_missing("POSIX threads" "libc6-dev")
endif()

find_library(SHL_RT_LIBRARY rt)
if(NOT SHL_RT_LIBRARY)
    _shl_missing("librt" "libc6-dev")
endif()

set(SHL_LIB_DEPS
    PkgConfig::SHL_URCU_CDS
    PkgConfig::SHL_URCU
    PkgConfig::SHL_XXHASH
    PkgConfig::SHL_JANSSON
    Threads::Threads
    rt)

macro(shl_require_cmocka)
    shl_pkg(SHL_CMOCKA cmocka libcmocka-dev)
endmacro()

macro(shl_require_ncursesw)
    shl_pkg(SHL_NCURSESW ncursesw libncurses-dev)
endmacro()

macro(shl_require_benchmark)
    if(NOT TARGET benchmark::benchmark)
        find_package(benchmark QUIET)
        if(NOT benchmark_FOUND)
            message(FATAL_ERROR
                "Google Benchmark not found: install the Debian package "
                "libbenchmark-dev (tools/dev/setup.sh does), or configure "
                "with -DSHL_BUILD_BENCH=OFF")
        endif()
        message(STATUS "Found benchmark ${benchmark_VERSION}")
    endif()
endmacro()
