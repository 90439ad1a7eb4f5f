# Install rules: the shared library as libfstore.so.X.Y.Z with the
# libfstore.so.X (SONAME) and libfstore.so links, the static library, the
# headers under include/fstore/, fstore, a CMake package and fstore.pc.
include(CMakePackageConfigHelpers)

set(FSTORE_SHARED_REAL_NAME "libfstore.so.${PROJECT_VERSION}")
set(_links "${PROJECT_BINARY_DIR}/install-links")
file(MAKE_DIRECTORY "${_links}")
file(CREATE_LINK "${FSTORE_SHARED_REAL_NAME}" "${_links}/${FSTORE_SONAME}" SYMBOLIC)
file(CREATE_LINK "${FSTORE_SONAME}" "${_links}/libfstore.so" SYMBOLIC)

install(FILES "${FSTORE_BUILT_LIB_DIR}/libfstore.so" DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        RENAME "${FSTORE_SHARED_REAL_NAME}"
        PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
install(FILES "${_links}/${FSTORE_SONAME}" "${_links}/libfstore.so" "${FSTORE_BUILT_LIB_DIR}/libfstore.a"
        DESTINATION "${CMAKE_INSTALL_LIBDIR}")
install(PROGRAMS "${FSTORE_BUILT_LIB_DIR}/fstore" DESTINATION "${CMAKE_INSTALL_BINDIR}")
install(FILES include/fstore.h bindings/cpp/include/fstore.hpp DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/fstore")

# pkg-config: relocatable (prefix found from the .pc file's own place), and
# Libs.private from the same list as fstore::fstore_static.
set(_pc_dir "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
file(RELATIVE_PATH FSTORE_PC_RELATIVE_PREFIX "/prefix/${_pc_dir}" "/prefix")
string(REGEX REPLACE "/$" "" FSTORE_PC_RELATIVE_PREFIX "${FSTORE_PC_RELATIVE_PREFIX}")
set(FSTORE_PC_LIBS_PRIVATE "-lpthread")
foreach(_lib IN LISTS FSTORE_STATIC_SYSTEM_LIBS)
  string(APPEND FSTORE_PC_LIBS_PRIVATE " -l${_lib}")
endforeach()
configure_file(cmake/fstore.pc.in "${PROJECT_BINARY_DIR}/fstore.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/fstore.pc" DESTINATION "${_pc_dir}")

# CMake package: find_package(fstore).
set(_cmake_dir "${CMAKE_INSTALL_LIBDIR}/cmake/fstore")
configure_package_config_file(cmake/fstoreConfig.cmake.in "${PROJECT_BINARY_DIR}/fstoreConfig.cmake"
                              INSTALL_DESTINATION "${_cmake_dir}"
                              PATH_VARS CMAKE_INSTALL_LIBDIR CMAKE_INSTALL_INCLUDEDIR)
# The SONAME changes with the major version only, and so does compatibility.
write_basic_package_version_file("${PROJECT_BINARY_DIR}/fstoreConfigVersion.cmake"
                                 COMPATIBILITY SameMajorVersion)
install(FILES "${PROJECT_BINARY_DIR}/fstoreConfig.cmake" "${PROJECT_BINARY_DIR}/fstoreConfigVersion.cmake"
              cmake/fstoreTargets.cmake
        DESTINATION "${_cmake_dir}")
