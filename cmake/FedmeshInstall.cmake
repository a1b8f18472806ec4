# SPDX-License-Identifier: MIT
# Installs the SDK: libfedmesh, the public headers (with the generated
# version.h) and a CMake package, so that a third party can write
#   find_package(fedmesh REQUIRED)
#   fm_add_plugin(NAME myplugin SOURCES myplugin.c)
# and get fedmesh::fedmesh (the engine, for embedding), fedmesh::plugin_api
# (headers only: what plugins link) and fm_add_plugin().
include(CMakePackageConfigHelpers)

set(FM_INSTALL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/fedmesh)

set_target_properties(fedmesh_plugin_api PROPERTIES EXPORT_NAME plugin_api)
install(TARGETS fedmesh fedmesh_plugin_api EXPORT fedmesh-targets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/engine/include/fedmesh
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")
install(FILES ${CMAKE_BINARY_DIR}/include/fedmesh/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fedmesh)

install(EXPORT fedmesh-targets NAMESPACE fedmesh::
  FILE fedmesh-targets.cmake DESTINATION ${FM_INSTALL_CMAKE_DIR})
set(fm_pkg ${CMAKE_BINARY_DIR}/cmake/install)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/fedmesh-config.cmake.in
  ${fm_pkg}/fedmesh-config.cmake
  INSTALL_DESTINATION ${FM_INSTALL_CMAKE_DIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR FM_INSTALL_PLUGIN_DIR)
write_basic_package_version_file(${fm_pkg}/fedmesh-config-version.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES
  ${fm_pkg}/fedmesh-config.cmake
  ${fm_pkg}/fedmesh-config-version.cmake
  ${PROJECT_SOURCE_DIR}/cmake/fedmesh-plugin.cmake
  DESTINATION ${FM_INSTALL_CMAKE_DIR})

# The same package straight from this build tree, without installing:
# -Dfedmesh_DIR=<build>/cmake.
set(fm_pkg ${CMAKE_BINARY_DIR}/cmake)
export(EXPORT fedmesh-targets NAMESPACE fedmesh::
  FILE ${fm_pkg}/fedmesh-targets.cmake)
file(WRITE ${fm_pkg}/fedmesh-config.cmake
  "# Generated: the fedmesh package in the build tree ${CMAKE_BINARY_DIR}.\n"
  "include(\"\${CMAKE_CURRENT_LIST_DIR}/fedmesh-targets.cmake\")\n"
  "include(\"${PROJECT_SOURCE_DIR}/cmake/fedmesh-plugin.cmake\")\n"
  "set(fedmesh_INCLUDE_DIR \"${PROJECT_SOURCE_DIR}/engine/include\")\n"
  "set(fedmesh_PLUGIN_DIR \"${FM_PLUGIN_OUT_DIR}\")\n")
configure_file(${CMAKE_BINARY_DIR}/cmake/install/fedmesh-config-version.cmake
  ${fm_pkg}/fedmesh-config-version.cmake COPYONLY)
