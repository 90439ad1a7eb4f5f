# Where libfstore comes from: built by cargo as part of this build (the
# default), or prebuilt (FSTORE_LIB_DIR). Sets FSTORE_BUILT_LIB_DIR, the
# directory that holds (or will hold) libfstore.so, libfstore.a and
# fstore, and, when cargo builds, the target fstore_cargo_build.

set(FSTORE_LIB_DIR "" CACHE PATH
    "A directory holding a prebuilt libfstore.so, libfstore.a and fstore (from `cargo build --release`); empty: build them with cargo")

if(NOT FSTORE_LIB_DIR STREQUAL "")
  foreach(_file libfstore.so libfstore.a fstore)
    if(NOT EXISTS "${FSTORE_LIB_DIR}/${_file}")
      message(FATAL_ERROR "${_file} is not in FSTORE_LIB_DIR (${FSTORE_LIB_DIR}): build it with "
                          "`cargo build --release --lib --bins`, or leave FSTORE_LIB_DIR empty to have CMake run cargo")
    endif()
  endforeach()
  set(FSTORE_BUILT_LIB_DIR "${FSTORE_LIB_DIR}")
  # Programs linked here look for the SONAME's file name at run time; cargo
  # writes only libfstore.so.
  if(NOT EXISTS "${FSTORE_LIB_DIR}/${FSTORE_SONAME}")
    file(CREATE_LINK libfstore.so "${FSTORE_LIB_DIR}/${FSTORE_SONAME}" RESULT _link_result SYMBOLIC)
    if(NOT _link_result EQUAL 0)
      message(FATAL_ERROR "cannot create the link ${FSTORE_SONAME} -> libfstore.so in FSTORE_LIB_DIR "
                          "(${FSTORE_LIB_DIR}): ${_link_result}")
    endif()
  endif()
  return()
endif()

# The target directory: whatever cargo would use from this environment, so
# that an existing build (and its half-hour DuckDB compile) is reused.
if(NOT "$ENV{CARGO_TARGET_DIR}" STREQUAL "")
  set(_default_target_dir "$ENV{CARGO_TARGET_DIR}")
else()
  set(_default_target_dir "${PROJECT_SOURCE_DIR}/target")
endif()
set(FSTORE_CARGO_TARGET_DIR "${_default_target_dir}" CACHE PATH
    "cargo's target directory for libfstore (default: $CARGO_TARGET_DIR, else <source>/target)")
set(FSTORE_CARGO_FLAGS "" CACHE STRING "Extra arguments for `cargo build` (a ;-list)")
find_program(FSTORE_CARGO cargo HINTS "$ENV{CARGO_HOME}/bin" "$ENV{HOME}/.cargo/bin"
             DOC "cargo, which builds libfstore")
if(NOT FSTORE_CARGO)
  message(FATAL_ERROR "cargo was not found: install Rust (https://rustup.rs) or set FSTORE_CARGO, "
                      "or point FSTORE_LIB_DIR at a prebuilt libfstore")
endif()

set(FSTORE_BUILT_LIB_DIR "${FSTORE_CARGO_TARGET_DIR}/release")
# Always run: cargo itself knows what is out of date (a second or two when
# nothing is). The link gives the library the name its SONAME asks for, so
# that programs linked here run from here.
add_custom_target(fstore_cargo_build ALL
  COMMAND "${FSTORE_CARGO}" build --release --lib --bin fstore
          --manifest-path "${PROJECT_SOURCE_DIR}/Cargo.toml" --target-dir "${FSTORE_CARGO_TARGET_DIR}"
          ${FSTORE_CARGO_FLAGS}
  COMMAND "${CMAKE_COMMAND}" -E create_symlink libfstore.so "${FSTORE_BUILT_LIB_DIR}/${FSTORE_SONAME}"
  BYPRODUCTS "${FSTORE_BUILT_LIB_DIR}/libfstore.so" "${FSTORE_BUILT_LIB_DIR}/libfstore.a"
             "${FSTORE_BUILT_LIB_DIR}/fstore" "${FSTORE_BUILT_LIB_DIR}/${FSTORE_SONAME}"
  WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
  COMMENT "Building libfstore with cargo (target directory ${FSTORE_CARGO_TARGET_DIR})"
  USES_TERMINAL
  VERBATIM)
