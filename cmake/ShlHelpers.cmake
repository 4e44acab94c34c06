# Build helpers shared by the library, tools, tests and benchmarks.

# ---------------------------------------------------------------------------
# shl_apply_sanitizer(): SHL_SANITIZER (one STRING, as nng's NNG_SANITIZER and
# Redis' SANITIZER=) for every target defined after the call, compile and link.
function(shl_apply_sanitizer)
    set(allowed none address undefined "address,undefined" "undefined,address" thread)
    if(NOT SHL_SANITIZER IN_LIST allowed)
        message(FATAL_ERROR
            "SHL_SANITIZER='${SHL_SANITIZER}': use one of none, address, "
            "undefined, address,undefined, thread")
    endif()
    if(SHL_SANITIZER STREQUAL "none")
        return()
    endif()
    set(flags -fsanitize=${SHL_SANITIZER} -fno-omit-frame-pointer
        -fno-sanitize-recover=all)
    if(SHL_SANITIZER STREQUAL "thread")
        # gcc: "atomic_thread_fence is not supported with -fsanitize=thread"
        # stays visible as a warning (TSan does not model fences) but must not
        # stop a SHL_WERROR build.
        list(APPEND flags -Wno-error=tsan)
    endif()
    add_compile_options(${flags})
    add_link_options(-fsanitize=${SHL_SANITIZER})
    message(STATUS "Sanitizer: ${SHL_SANITIZER}")
endfunction()

# ---------------------------------------------------------------------------
# shl_target_warnings(TARGET): the house warning set (STYLE.md b6) for C;
# -Wall -Wextra for C++ (bench/); -Werror for both with SHL_WERROR.
function(shl_target_warnings tgt)
    target_compile_options(${tgt} PRIVATE
        $<$<COMPILE_LANGUAGE:C>:-Wall -Wextra -Wpedantic -Wshadow
            -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wundef>
        $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra>)
    if(SHL_WERROR)
        target_compile_options(${tgt} PRIVATE -Werror)
    endif()
endfunction()

# shl_target_defaults(TARGET): warnings + _GNU_SOURCE (set here, never in a
# header: STYLE.md b6).
function(shl_target_defaults tgt)
    shl_target_warnings(${tgt})
    target_compile_definitions(${tgt} PRIVATE _GNU_SOURCE)
endfunction()

# ---------------------------------------------------------------------------
# shl_add_test(NAME <ctest name> SOURCES <src...> LABELS <label...>
#              TIMEOUT <seconds> [TARGET <target>] [OUTPUT_NAME <file>]
#              [OUTPUT_DIR <dir>] [LINK <lib...>] [PUBLIC_ONLY])
#
# Like nng's nng_test(): one executable, one ctest entry with labels and a
# timeout (scaled by SHL_TEST_TIMEOUT_MULTIPLIER). By default the test links
# shmledger_objs (internals, shl__ symbols, src/ headers), the test support
# library when there is one, and cmocka. PUBLIC_ONLY links shmledger::shmledger
# alone, compiles as a plain user would (gnu11, no _GNU_SOURCE) and sees only
# include/.
#
# A test source that defines __wrap_<sym>(...) gets -Wl,--wrap=<sym>, so
# calls from the library objects to <sym> go to the test's mock (cmocka's
# will_return/mock_type pattern); __real_<sym> reaches the original.
#
# Every C test runs under SHL_TEST_WRAPPER when set (e.g. valgrind) and sees
# the environment:
#   SHL_TEST_TMPDIR               <build>/testtmp (exists)
#   SHL_TEST_BINDIR               <build>/tests (tests/<tier>/helper_* live there)
#   SHL_TEST_TIMEOUT_MULTIPLIER   only when not 1
#   SHL_CLI, SHL_TOP              paths of the commands, when they are built
function(shl_add_test)
    cmake_parse_arguments(PARSE_ARGV 0 T "PUBLIC_ONLY"
        "NAME;TARGET;TIMEOUT;OUTPUT_NAME;OUTPUT_DIR" "SOURCES;LABELS;LINK")
    if(NOT T_NAME OR NOT T_SOURCES)
        message(FATAL_ERROR "shl_add_test: NAME and SOURCES are required")
    endif()
    if(NOT T_TARGET)
        string(MAKE_C_IDENTIFIER "test_${T_NAME}" T_TARGET)
    endif()
    if(NOT T_TIMEOUT)
        set(T_TIMEOUT 120)
    endif()

    add_executable(${T_TARGET} ${T_SOURCES})
    if(T_OUTPUT_NAME)
        set_target_properties(${T_TARGET} PROPERTIES OUTPUT_NAME ${T_OUTPUT_NAME})
    endif()
    if(T_OUTPUT_DIR)
        set_target_properties(${T_TARGET} PROPERTIES
            RUNTIME_OUTPUT_DIRECTORY "${T_OUTPUT_DIR}")
    endif()

    if(T_PUBLIC_ONLY)
        set_target_properties(${T_TARGET} PROPERTIES C_EXTENSIONS ON)
        shl_target_warnings(${T_TARGET})
        target_link_libraries(${T_TARGET} PRIVATE shmledger::shmledger ${T_LINK})
    else()
        shl_target_defaults(${T_TARGET})
        target_link_libraries(${T_TARGET} PRIVATE shmledger_objs)
        if(TARGET shl_test_support)
            target_link_libraries(${T_TARGET} PRIVATE shl_test_support)
        endif()
        target_link_libraries(${T_TARGET} PRIVATE PkgConfig::SHL_CMOCKA ${T_LINK})
    endif()
    # assert() must work in tests whatever the build type.
    target_compile_options(${T_TARGET} PRIVATE -UNDEBUG)

    # --wrap for every __wrap_<sym> the test defines.
    foreach(src IN LISTS T_SOURCES)
        if(NOT IS_ABSOLUTE "${src}")
            set(src "${CMAKE_CURRENT_SOURCE_DIR}/${src}")
        endif()
        file(STRINGS "${src}" lines REGEX "__wrap_[A-Za-z0-9_]+[ \t]*\\(")
        foreach(line IN LISTS lines)
            string(REGEX MATCHALL "__wrap_[A-Za-z0-9_]+[ \t]*\\(" hits "${line}")
            foreach(hit IN LISTS hits)
                string(REGEX REPLACE "^__wrap_([A-Za-z0-9_]+).*" "\\1" sym "${hit}")
                target_link_options(${T_TARGET} PRIVATE "LINKER:--wrap=${sym}")
            endforeach()
        endforeach()
        set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${src}")
    endforeach()

    add_test(NAME ${T_NAME} COMMAND ${SHL_TEST_WRAPPER} $<TARGET_FILE:${T_TARGET}>)

    math(EXPR timeout "${T_TIMEOUT} * ${SHL_TEST_TIMEOUT_MULTIPLIER}")
    shl_test_environment(env)
    set_tests_properties(${T_NAME} PROPERTIES
        LABELS "${T_LABELS}"
        TIMEOUT ${timeout}
        ENVIRONMENT "${env}")
endfunction()

# shl_test_environment(OUTVAR): the ENVIRONMENT list every test gets.
function(shl_test_environment outvar)
    set(env
        "SHL_TEST_TMPDIR=${SHL_TEST_TMPDIR}"
        "SHL_TEST_BINDIR=${PROJECT_BINARY_DIR}/tests")
    if(NOT SHL_TEST_TIMEOUT_MULTIPLIER STREQUAL "1")
        list(APPEND env "SHL_TEST_TIMEOUT_MULTIPLIER=${SHL_TEST_TIMEOUT_MULTIPLIER}")
    endif()
    if(TARGET shmledger_cli)
        list(APPEND env "SHL_CLI=$<TARGET_FILE:shmledger_cli>")
    endif()
    if(TARGET shmledger-top)
        list(APPEND env "SHL_TOP=$<TARGET_FILE:shmledger-top>")
    endif()
    set(${outvar} "${env}" PARENT_SCOPE)
endfunction()

# ---------------------------------------------------------------------------
# shl_fuzz_flags(): SHL_FUZZ=ON instruments every target defined after the
# call for libFuzzer (coverage) with ASan and UBSan; the fuzz executables
# add -fsanitize=fuzzer at link (cmake/ShlFuzz.cmake). clang only.
function(shl_fuzz_flags)
    if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
        message(FATAL_ERROR
            "SHL_FUZZ=ON needs clang (libFuzzer): configure with "
            "-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ "
            "(Debian: clang-14 and libclang-rt-14-dev)")
    endif()
    if(NOT SHL_SANITIZER STREQUAL "none")
        message(FATAL_ERROR "SHL_FUZZ=ON brings its own sanitizers: "
            "leave SHL_SANITIZER at none")
    endif()
    add_compile_options(-fsanitize=fuzzer-no-link,address,undefined
        -fno-omit-frame-pointer -fno-sanitize-recover=all -g)
    add_link_options(-fsanitize=address,undefined)
    message(STATUS "Fuzzing: libFuzzer + ASan + UBSan")
endfunction()
