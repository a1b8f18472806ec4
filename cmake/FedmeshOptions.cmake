# SPDX-License-Identifier: MIT
# Build options. Warnings are errors by default: the tree is kept clean with
# gcc and clang.
option(FEDMESH_TESTS "Build the test suite" ON)
option(FEDMESH_WERROR "Treat warnings as errors" ON)
set(FEDMESH_SANITIZER "none" CACHE STRING "none|address|undefined|address,undefined|thread")

set(FM_WARN_FLAGS -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wpointer-arith -Wformat=2 -Wno-unused-parameter)
if(FEDMESH_WERROR)
  list(APPEND FM_WARN_FLAGS -Werror)
endif()

if(NOT FEDMESH_SANITIZER STREQUAL "none")
  add_compile_options(-fsanitize=${FEDMESH_SANITIZER} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${FEDMESH_SANITIZER})
  set(FM_TEST_TIMEOUT_FACTOR 3)
else()
  set(FM_TEST_TIMEOUT_FACTOR 1)
endif()

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE RelWithDebInfo CACHE STRING "Build type" FORCE)
endif()
