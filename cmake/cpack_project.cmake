# cmake/cpack_project.cmake: read by cpack when it packages. The relations
# to the libraries sonde dlopens, from its .note.dlopen notes
# (scripts/deb_depends.lua, run by the sonde just built).
if(CPACK_GENERATOR STREQUAL "DEB")
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env SONDE_CACHE=off ${CPACK_SONDE_BINARY_DIR}/sonde run scripts/deb_depends.lua
            ${CPACK_SONDE_BINARY_DIR}/sonde ${CPACK_SONDE_BINARY_DIR}/libsonde.so
    WORKING_DIRECTORY ${CPACK_SONDE_SOURCE_DIR}
    OUTPUT_VARIABLE _sonde_relations RESULT_VARIABLE _sonde_rc)
  if(NOT _sonde_rc EQUAL 0)
    message(FATAL_ERROR " sonde: cannot work out the packages of the dlopen'd libraries (see above)")
  endif()
  string(REGEX MATCH "Depends=([^\n]*)" _ "${_sonde_relations}")
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "${CMAKE_MATCH_1}")
  string(REGEX MATCH "Recommends=([^\n]*)" _ "${_sonde_relations}")
  set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "${CMAKE_MATCH_1}")
  string(REGEX MATCH "Suggests=([^\n]*)" _ "${_sonde_relations}")
  set(CPACK_DEBIAN_PACKAGE_SUGGESTS "${CMAKE_MATCH_1}")
  message(STATUS "sonde: dlopen'd libraries: Depends: ${CPACK_DEBIAN_PACKAGE_DEPENDS}")
endif()
