# Dependencies of shmledger. A missing library dependency stops the configure
# step with a message naming the Debian package that provides it; the optional
# ones (cmocka for tests, Google Benchmark, ncursesw for shmledger-top) are
# probed with shl_find_*() and the caller skips what needs them, with a
# warning. tools/dev/setup.sh installs them all.
#
# Sets SHL_LIB_DEPS: what libshmledger (and everything built against its
# internals) links. Imported targets:
# PkgConfig::SHL_XXHASH, PkgConfig::SHL_JANSSON, Threads::Threads; on demand
# PkgConfig::SHL_CMOCKA (shl_find_cmocka / shl_require_cmocka),
# PkgConfig::SHL_NCURSESW (shl_find_ncursesw / shl_require_ncursesw),
# benchmark::benchmark (shl_find_benchmark / shl_require_benchmark).

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
    PkgConfig::SHL_XXHASH
    PkgConfig::SHL_JANSSON
    Threads::Threads
    rt)

# shl_find_pkg(PREFIX MODULE OUTVAR): like shl_pkg, but sets OUTVAR to TRUE or
# FALSE instead of stopping.
macro(shl_find_pkg prefix module outvar)
    if(NOT TARGET PkgConfig::${prefix})
        pkg_check_modules(${prefix} QUIET IMPORTED_TARGET ${module})
        if(${prefix}_FOUND)
            message(STATUS "Found ${module} ${${prefix}_VERSION}")
        endif()
    endif()
    if(TARGET PkgConfig::${prefix})
        set(${outvar} TRUE)
    else()
        set(${outvar} FALSE)
    endif()
endmacro()

macro(shl_find_cmocka outvar)
    shl_find_pkg(SHL_CMOCKA cmocka ${outvar})
endmacro()

macro(shl_find_ncursesw outvar)
    shl_find_pkg(SHL_NCURSESW ncursesw ${outvar})
endmacro()

macro(shl_find_benchmark outvar)
    if(NOT TARGET benchmark::benchmark)
        find_package(benchmark QUIET)
        if(benchmark_FOUND)
            message(STATUS "Found benchmark ${benchmark_VERSION}")
        endif()
    endif()
    if(TARGET benchmark::benchmark)
        set(${outvar} TRUE)
    else()
        set(${outvar} FALSE)
    endif()
endmacro()

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
