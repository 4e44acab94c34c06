# Test tree (included from the top-level CMakeLists.txt when SHL_BUILD_TESTS).
#
#   tests/support/*.c        static library shl_test_support (linked by every
#                            internal test); include with "support/<x>.h" or
#                            "<x>.h"
#   tests/<tier>/test_*.c    one executable + ctest each; tiers and labels:
#                            unit (TIMEOUT 120), proc (300), conformance
#                            (300: the original's test suite, ported),
#                            stress (1800: the torture tier, run by the
#                            "stress" stage of tools/dev/test.sh and by
#                            tools/dev/torture.sh)
#   tests/<tier>/helper_*.c  helper programs a test may spawn, built into
#                            $SHL_TEST_BINDIR/<tier>/helper_<name>
#   tests/cli/run.sh         ctest "cli": bash run.sh <shmledger> [<shmledger-top>]
#   tests/example/*.c        README examples, public API only, label unit
#
# ctest names: <tier>.<name> (e.g. unit.segment for tests/unit/test_segment.c),
# cli, example.<name>. Binaries: build/x/tests/<tier>/test_<name>.

shl_require_cmocka()

set(SHL_TEST_TMPDIR "${PROJECT_BINARY_DIR}/testtmp")
file(MAKE_DIRECTORY "${SHL_TEST_TMPDIR}")

set(_shl_tests "${PROJECT_SOURCE_DIR}/tests")
set(_shl_test_bin "${PROJECT_BINARY_DIR}/tests")

# Support library.
file(GLOB _shl_support_sources CONFIGURE_DEPENDS "${_shl_tests}/support/*.c")
if(_shl_support_sources)
    add_library(shl_test_support STATIC ${_shl_support_sources})
    target_include_directories(shl_test_support PUBLIC
        "${_shl_tests}" "${_shl_tests}/support")
    target_link_libraries(shl_test_support PUBLIC
        shmledger_internal PkgConfig::SHL_CMOCKA)
    target_compile_options(shl_test_support PRIVATE -UNDEBUG)
    shl_target_defaults(shl_test_support)
endif()

# Tiers.
foreach(_tier_timeout IN ITEMS "unit:120" "proc:300" "conformance:300" "stress:1800")
    string(REPLACE ":" ";" _tt "${_tier_timeout}")
    list(GET _tt 0 _tier)
    list(GET _tt 1 _timeout)

    file(GLOB _helpers CONFIGURE_DEPENDS "${_shl_tests}/${_tier}/helper_*.c")
    foreach(_src IN LISTS _helpers)
        get_filename_component(_stem "${_src}" NAME_WE)
        set(_tgt "${_tier}_${_stem}")
        add_executable(${_tgt} "${_src}")
        set_target_properties(${_tgt} PROPERTIES
            OUTPUT_NAME ${_stem}
            RUNTIME_OUTPUT_DIRECTORY "${_shl_test_bin}/${_tier}")
        target_link_libraries(${_tgt} PRIVATE shmledger_objs)
        if(TARGET shl_test_support)
            target_link_libraries(${_tgt} PRIVATE shl_test_support)
        endif()
        target_compile_options(${_tgt} PRIVATE -UNDEBUG)
        shl_target_defaults(${_tgt})
    endforeach()

    file(GLOB _tests CONFIGURE_DEPENDS "${_shl_tests}/${_tier}/test_*.c")
    foreach(_src IN LISTS _tests)
        get_filename_component(_stem "${_src}" NAME_WE)   # test_<name>
        string(REGEX REPLACE "^test_" "" _name "${_stem}")
        shl_add_test(NAME ${_tier}.${_name}
            TARGET test_${_tier}_${_name}
            OUTPUT_NAME ${_stem}
            OUTPUT_DIR "${_shl_test_bin}/${_tier}"
            SOURCES "${_src}"
            LABELS ${_tier}
            TIMEOUT ${_timeout})
    endforeach()
endforeach()

# The ring's kill loop runs from the proc binary with --loop, in the stress
# tier (opt-in): see tests/proc/test_ring_kill.c.
if(TARGET test_proc_ring_kill)
    add_test(NAME stress.ring_kill_loop
        COMMAND ${SHL_TEST_WRAPPER} $<TARGET_FILE:test_proc_ring_kill> --loop)
    shl_test_environment(_ring_env)
    set_tests_properties(stress.ring_kill_loop PROPERTIES
        LABELS stress TIMEOUT 600 ENVIRONMENT "${_ring_env}")
endif()

# README examples: built like a user's program against the public interface.
file(GLOB _examples CONFIGURE_DEPENDS "${_shl_tests}/example/*.c")
foreach(_src IN LISTS _examples)
    get_filename_component(_name "${_src}" NAME_WE)
    shl_add_test(NAME example.${_name}
        TARGET example_${_name}
        OUTPUT_DIR "${_shl_test_bin}/example"
        SOURCES "${_src}"
        LABELS unit
        TIMEOUT 120
        PUBLIC_ONLY)
endforeach()

# docs/mapping.md (the Dart -> C table) against the public header.
find_package(Python3 COMPONENTS Interpreter QUIET)
if(Python3_Interpreter_FOUND)
    add_test(NAME unit.mapping
        COMMAND "${Python3_EXECUTABLE}"
                "${PROJECT_SOURCE_DIR}/tools/dev/check-mapping.py"
                "${PROJECT_SOURCE_DIR}")
    set_tests_properties(unit.mapping PROPERTIES LABELS unit TIMEOUT 60)
else()
    message(STATUS "unit.mapping skipped: no python3")
endif()

# Command-line tests (zstd tests/cli-tests style). Under SHL_TEST_WRAPPER the
# script gets the wrapper as SHL_EXEC_PREFIX, to put before each command.
if(EXISTS "${_shl_tests}/cli/run.sh" AND TARGET shmledger_cli)
    set(_cli_args $<TARGET_FILE:shmledger_cli>)
    if(TARGET shmledger-top)
        list(APPEND _cli_args $<TARGET_FILE:shmledger-top>)
    endif()
    add_test(NAME cli
        COMMAND bash "${_shl_tests}/cli/run.sh" ${_cli_args}
        WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}")
    shl_test_environment(_env)
    if(SHL_TEST_WRAPPER)
        list(JOIN SHL_TEST_WRAPPER " " _prefix)
        list(APPEND _env "SHL_EXEC_PREFIX=${_prefix}")
    endif()
    math(EXPR _timeout "300 * ${SHL_TEST_TIMEOUT_MULTIPLIER}")
    set_tests_properties(cli PROPERTIES
        LABELS cli
        TIMEOUT ${_timeout}
        ENVIRONMENT "${_env}")
elseif(EXISTS "${_shl_tests}/cli/run.sh")
    message(STATUS "tests/cli/run.sh skipped: the shmledger command is not built")
endif()
