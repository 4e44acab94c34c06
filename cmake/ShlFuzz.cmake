# libFuzzer targets (SHL_FUZZ=ON, clang only; tools/dev/fuzz.sh builds
# build/fuzz and runs them).
#
#   tests/fuzz/fuzz_<name>.c      one executable fuzz_<name> each, in
#                                 build/x/tests/fuzz/, linked with
#                                 -fsanitize=fuzzer,address,undefined
#   tests/fuzz/corpus/<name>/     committed seeds (small valid inputs)
#   tests/fuzz/regress/<name>/    inputs of crashes found (regressions; not
#                                 seeds, so a known crash does not stop a
#                                 fuzzing run at its first input)
#
# ctest fuzz.<name> (label fuzz) replays seeds and regressions without
# fuzzing (./fuzz_<name> -runs=0 corpus/<name> regress/<name>): every input
# that once crashed stays a test.

set(_shl_fuzz_dir "${PROJECT_SOURCE_DIR}/tests/fuzz")
file(GLOB _fuzz_sources CONFIGURE_DEPENDS "${_shl_fuzz_dir}/fuzz_*.c")
foreach(_src IN LISTS _fuzz_sources)
    get_filename_component(_name "${_src}" NAME_WE)      # fuzz_<x>
    string(REGEX REPLACE "^fuzz_" "" _short "${_name}")
    add_executable(${_name} "${_src}")
    set_target_properties(${_name} PROPERTIES
        RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/tests/fuzz")
    target_include_directories(${_name} PRIVATE "${_shl_fuzz_dir}")
    target_link_libraries(${_name} PRIVATE shmledger_objs)
    target_link_options(${_name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_compile_options(${_name} PRIVATE -UNDEBUG)
    shl_target_defaults(${_name})
    set(_dirs "")
    foreach(_kind IN ITEMS corpus regress)
        if(EXISTS "${_shl_fuzz_dir}/${_kind}/${_short}")
            list(APPEND _dirs "${_shl_fuzz_dir}/${_kind}/${_short}")
        endif()
    endforeach()
    if(_dirs)
        add_test(NAME fuzz.${_short}
            COMMAND ${_name} -runs=0 ${_dirs})
        set_tests_properties(fuzz.${_short} PROPERTIES
            LABELS fuzz
            TIMEOUT 300
            ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
    endif()
endforeach()
