# cmake/package.cmake: the Debian package, made by CPack from the install
# tree (cmake/install.cmake). CPack rather than a debian/ folder built with
# dpkg-buildpackage: the package holds exactly what `cmake --install` puts,
# with no second list of files (debian/*.install) or of build steps
# (debian/rules) to keep in step; everything is written under the build
# folder, where dpkg-buildpackage writes debian/files, debian/sonde/ and
# debian/.debhelper into the source tree and the .deb into its parent; and
# it needs no debhelper. What it lacks, computed Depends for the libraries
# sonde opens with dlopen, dh_shlibdeps lacks too (bookworm has no
# dh-dlopenlibdeps), so that part is sonde's own either way. scripts/deb
# builds it, scripts/deb-test installs and uses it.
#
# Depends: dpkg-shlibdeps computes those of the linked libraries; those of
# the libraries sonde opens with dlopen (libcurl, libedit), which it cannot
# see, scripts/deb_depends.lua computes at packaging time from the binary's
# .note.dlopen notes (cmake/cpack_project.cmake).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sonde)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "sonde maintainers <sonde@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "run tests written in Lua: API scenarios, spec suites, live checks, a REPL")
set(CPACK_PACKAGE_DESCRIPTION "sonde embeds LuaJIT and runs tests written in Lua as tasks on an event \
loop (libuv): HTTP requests (libcurl), child processes, an embedded HTTP server, a virtual clock, \
events and LiveCheck. Spec files use busted's DSL. The package also holds the embedding API: \
libsonde, its header, pkg-config and CMake files.")
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT) # sonde_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_SOURCE_DIR}/cmake/cpack_project.cmake)
set(CPACK_SONDE_SOURCE_DIR ${CMAKE_SOURCE_DIR})
set(CPACK_SONDE_BINARY_DIR ${CMAKE_BINARY_DIR})
include(CPack)
