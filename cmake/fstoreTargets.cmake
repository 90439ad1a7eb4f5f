# Defines the imported targets of libfstore, for this source tree and for an
# installed copy alike (fstoreConfig.cmake includes this file):
#
#   fstore::fstore         the shared library (libfstore.so) and fstore.h
#   fstore::fstore_static  the static library (libfstore.a) and the system
#                          libraries it needs (Rust std, bundled DuckDB C++)
#   fstore::cpp            the header-only C++17 binding (fstore.hpp) over fstore::fstore
#
# Inputs: FSTORE_TARGETS_LIB_DIR (holds libfstore.so and libfstore.a),
# FSTORE_TARGETS_INCLUDE_DIRS (fstore.h), FSTORE_TARGETS_CPP_INCLUDE_DIRS (fstore.hpp).

# System libraries of the static library: libstdc++ for DuckDB; the rest for
# Rust's std (as `cargo rustc -- --print native-static-libs` lists them).
# fstore.pc's Libs.private is generated from this list too.
set(FSTORE_STATIC_SYSTEM_LIBS stdc++ m dl rt util)

find_package(Threads REQUIRED)

if(NOT TARGET fstore::fstore)
  add_library(fstore::fstore SHARED IMPORTED)
  set_target_properties(fstore::fstore PROPERTIES
    IMPORTED_LOCATION "${FSTORE_TARGETS_LIB_DIR}/libfstore.so"
    # cargo's cdylib has no SONAME: link it as -lfstore, so that programs
    # record "libfstore.so" rather than this path.
    IMPORTED_NO_SONAME TRUE
    INTERFACE_INCLUDE_DIRECTORIES "${FSTORE_TARGETS_INCLUDE_DIRS}")
endif()

if(NOT TARGET fstore::fstore_static)
  add_library(fstore::fstore_static STATIC IMPORTED)
  set_target_properties(fstore::fstore_static PROPERTIES
    IMPORTED_LOCATION "${FSTORE_TARGETS_LIB_DIR}/libfstore.a"
    INTERFACE_INCLUDE_DIRECTORIES "${FSTORE_TARGETS_INCLUDE_DIRS}"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;${FSTORE_STATIC_SYSTEM_LIBS}")
endif()

if(NOT TARGET fstore::cpp)
  add_library(fstore::cpp INTERFACE IMPORTED)
  set_target_properties(fstore::cpp PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${FSTORE_TARGETS_CPP_INCLUDE_DIRS}"
    INTERFACE_LINK_LIBRARIES fstore::fstore
    INTERFACE_COMPILE_FEATURES cxx_std_17)
endif()
