# Targets `format-check` (clang-format --dry-run -Werror, as CI would run it)
# and `format` (clang-format -i) over include/ src/ tests/ tools/ bench/.
# Files are listed when the target runs (cmake/ShlFormatRun.cmake), so new
# files are covered without re-configuring.

find_program(SHL_CLANG_FORMAT NAMES clang-format-14 clang-format
    DOC "clang-format (14) for the format and format-check targets")

if(SHL_CLANG_FORMAT)
    foreach(_mode check fix)
        if(_mode STREQUAL "check")
            set(_target format-check)
        else()
            set(_target format)
        endif()
        add_custom_target(${_target}
            COMMAND "${CMAKE_COMMAND}"
                -DCLANG_FORMAT=${SHL_CLANG_FORMAT}
                -DSOURCE_DIR=${PROJECT_SOURCE_DIR}
                -DMODE=${_mode}
                -P "${PROJECT_SOURCE_DIR}/cmake/ShlFormatRun.cmake"
            WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
            COMMENT "clang-format (${_mode}) include/ src/ tests/ tools/ bench/"
            VERBATIM)
    endforeach()
else()
    foreach(_target format-check format)
        add_custom_target(${_target}
            COMMAND "${CMAKE_COMMAND}" -E echo
                "clang-format not found: install the Debian package clang-format (tools/dev/setup.sh does)"
            COMMAND "${CMAKE_COMMAND}" -E false
            VERBATIM)
    endforeach()
endif()
