# Defines the imported targets of libfstore, for a build tree and for an
# installed copy alike (fstoreConfig.cmake includes this file):
#
#   fstore::fstore         the shared library and <fstore/fstore.h>
#   fstore::fstore_static  the static library (libfstore.a) and the system
#                          libraries it needs (Rust std, bundled DuckDB C++)
#   fstore::cpp            the header-only C++17 binding <fstore/fstore.hpp>
#                          over fstore::fstore
#
# Inputs: FSTORE_TARGETS_SHARED_LIBRARY and FSTORE_TARGETS_STATIC_LIBRARY
# (paths), FSTORE_SONAME (the shared library's SONAME),
# FSTORE_TARGETS_INCLUDE_DIR (holds fstore/fstore.h and fstore/fstore.hpp),
# FSTORE_TARGETS_GLOBAL (make the targets visible to the whole build).

# System libraries of the static library: libstdc++ for DuckDB; the rest for
# Rust's std (as `cargo rustc -- --print native-static-libs` lists them).
# fstore.pc's Libs.private is generated from this list too.
set(FSTORE_STATIC_SYSTEM_LIBS stdc++ m dl rt util)

find_package(Threads REQUIRED)

if(FSTORE_TARGETS_GLOBAL)
  set(_fstore_scope GLOBAL)
else()
  set(_fstore_scope "")
endif()

if(NOT TARGET fstore::fstore)
  add_library(fstore::fstore SHARED IMPORTED ${_fstore_scope})
  set_target_properties(fstore::fstore PROPERTIES
    IMPORTED_LOCATION "${FSTORE_TARGETS_SHARED_LIBRARY}"
    IMPORTED_SONAME "${FSTORE_SONAME}"
    INTERFACE_INCLUDE_DIRECTORIES "${FSTORE_TARGETS_INCLUDE_DIR}")
endif()

if(NOT TARGET fstore::fstore_static)
  add_library(fstore::fstore_static STATIC IMPORTED ${_fstore_scope})
  set_target_properties(fstore::fstore_static PROPERTIES
    IMPORTED_LOCATION "${FSTORE_TARGETS_STATIC_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${FSTORE_TARGETS_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "Threads::Threads;${FSTORE_STATIC_SYSTEM_LIBS}")
endif()

if(NOT TARGET fstore::cpp)
  add_library(fstore::cpp INTERFACE IMPORTED ${_fstore_scope})
  set_target_properties(fstore::cpp PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${FSTORE_TARGETS_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES fstore::fstore
    INTERFACE_COMPILE_FEATURES cxx_std_17)
endif()
unset(_fstore_scope)
