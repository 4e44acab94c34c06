# cmake -DCLANG_FORMAT=... -DSOURCE_DIR=... -DMODE=check|fix -P ShlFormatRun.cmake
cmake_minimum_required(VERSION 3.25)

set(files)
foreach(dir include src tests tools bench)
    file(GLOB_RECURSE found
        "${SOURCE_DIR}/${dir}/*.c" "${SOURCE_DIR}/${dir}/*.h"
        "${SOURCE_DIR}/${dir}/*.cc" "${SOURCE_DIR}/${dir}/*.hh"
        "${SOURCE_DIR}/${dir}/*.cpp" "${SOURCE_DIR}/${dir}/*.hpp")
    list(APPEND files ${found})
endforeach()
list(SORT files)
list(LENGTH files n)
if(n EQUAL 0)
    message(STATUS "format: no files")
    return()
endif()

if(MODE STREQUAL "fix")
    execute_process(COMMAND "${CLANG_FORMAT}" -i --style=file ${files}
        RESULT_VARIABLE rc)
else()
    execute_process(COMMAND "${CLANG_FORMAT}" --dry-run -Werror --style=file ${files}
        RESULT_VARIABLE rc)
endif()
if(NOT rc EQUAL 0)
    if(MODE STREQUAL "fix")
        message(FATAL_ERROR "clang-format failed (${rc})")
    endif()
    message(FATAL_ERROR
        "format-check: files above are not clang-formatted; run "
        "`cmake --build <dir> --target format`")
endif()
message(STATUS "format-${MODE}: ${n} files ok")
