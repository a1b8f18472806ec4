# SPDX-License-Identifier: MIT
# fm_add_plugin(NAME <name> SOURCES <files> [OUTPUT_DIRECTORY <dir>] [NO_INSTALL])
#
# Builds a fedmesh plugin as a MODULE named <name>.so that links only the
# plugin API headers (never libfedmesh), with hidden visibility so that only
# fm_plugin_descriptor and fm_plugin_init are exported. Used in-tree and,
# installed with the SDK, by third-party plugins after find_package(fedmesh).
function(fm_add_plugin)
  cmake_parse_arguments(P "NO_INSTALL" "NAME;OUTPUT_DIRECTORY" "SOURCES" ${ARGN})
  if(NOT P_NAME OR NOT P_SOURCES)
    message(FATAL_ERROR "fm_add_plugin: NAME and SOURCES are required")
  endif()
  add_library(${P_NAME} MODULE ${P_SOURCES})
  if(TARGET fedmesh_plugin_api)
    target_link_libraries(${P_NAME} PRIVATE fedmesh_plugin_api)
  else()
    target_link_libraries(${P_NAME} PRIVATE fedmesh::plugin_api)
  endif()
  set_target_properties(${P_NAME} PROPERTIES
    PREFIX ""
    C_STANDARD 11
    C_VISIBILITY_PRESET hidden)
  if(FM_WARN_FLAGS)
    target_compile_options(${P_NAME} PRIVATE ${FM_WARN_FLAGS})
  endif()
  if(P_OUTPUT_DIRECTORY)
    set_target_properties(${P_NAME} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIRECTORY})
  elseif(DEFINED FM_PLUGIN_OUT_DIR)
    set_target_properties(${P_NAME} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${FM_PLUGIN_OUT_DIR})
  endif()
  if(NOT P_NO_INSTALL AND DEFINED FM_INSTALL_PLUGIN_DIR)
    install(TARGETS ${P_NAME} LIBRARY DESTINATION ${FM_INSTALL_PLUGIN_DIR})
  endif()
endfunction()
