# SPDX-License-Identifier: MIT
# Third-party dependencies, all from Debian packages (see README).
find_package(PkgConfig REQUIRED)
pkg_check_modules(FM_LUA REQUIRED IMPORTED_TARGET lua5.4)
pkg_check_modules(FM_ZMQ REQUIRED IMPORTED_TARGET libzmq)
pkg_check_modules(FM_SODIUM REQUIRED IMPORTED_TARGET libsodium)
pkg_check_modules(FM_MSGPACK REQUIRED IMPORTED_TARGET msgpack)
pkg_check_modules(FM_BLAS REQUIRED IMPORTED_TARGET openblas)
pkg_check_modules(FM_ZLIB REQUIRED IMPORTED_TARGET zlib)
find_package(Threads REQUIRED)
if(FEDMESH_TESTS)
  pkg_check_modules(FM_CMOCKA REQUIRED IMPORTED_TARGET cmocka)
endif()
