# SPDX-License-Identifier: MIT
# Helpers used across the tree.

# fm_add_test(NAME <ctest name> SOURCES <files> [LABELS <labels>] [LIBS <libs>]
#             [TIMEOUT <s>] [ENV <k=v>...])
# Builds a cmocka test against the internal fedmesh_static library.
function(fm_add_test)
  if(NOT FEDMESH_TESTS)
    return()
  endif()
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LABELS;LIBS;ENV" ${ARGN})
  string(REPLACE "." "_" tgt "${T_NAME}")
  add_executable(${tgt} ${T_SOURCES})
  target_compile_options(${tgt} PRIVATE ${FM_WARN_FLAGS})
  target_include_directories(${tgt} PRIVATE ${PROJECT_SOURCE_DIR}/tests/testing)
  target_link_libraries(${tgt} PRIVATE fedmesh_static PkgConfig::FM_CMOCKA ${T_LIBS})
  set_target_properties(${tgt} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/bin)
  add_test(NAME ${T_NAME} COMMAND ${tgt} WORKING_DIRECTORY ${CMAKE_BINARY_DIR})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  math(EXPR to "${T_TIMEOUT} * ${FM_TEST_TIMEOUT_FACTOR}")
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${to} LABELS "${T_LABELS}"
    ENVIRONMENT "FEDMESH_TEST_PLUGIN_DIR=${FM_TEST_PLUGIN_DIR};FEDMESH_BUILTIN_PLUGIN_DIR=${FM_PLUGIN_OUT_DIR};FEDMESH_SOURCE_DIR=${PROJECT_SOURCE_DIR};${T_ENV}")
endfunction()

include(${CMAKE_CURRENT_LIST_DIR}/fedmesh-plugin.cmake)
