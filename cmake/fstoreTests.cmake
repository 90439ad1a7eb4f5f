# The C API test (against the shared and the static library) and the C++
# binding's GoogleTest suite, run by ctest. Included at the top level only
# (FSTORE_BUILD_TESTS); a subproject that turns them on without GoogleTest
# gets the C tests and a warning.
enable_testing()
if(NOT "$ENV{FSTORE_LOCK_KEY_VECTORS}" STREQUAL "")
  set(_vectors "$ENV{FSTORE_LOCK_KEY_VECTORS}")
else()
  set(_vectors "${PROJECT_SOURCE_DIR}/tests/vectors/lock_keys.json")
endif()
set(FSTORE_LOCK_KEY_VECTORS "${_vectors}" CACHE FILEPATH "The lock-key reference vectors (JSON)")
set(_test_env "FSTORE_LOCK_KEY_VECTORS=${FSTORE_LOCK_KEY_VECTORS}")

# The C API test, against the shared and against the static library. It
# includes "fstore.h" from the source tree, as tests/c/run.sh builds it.
set(_capi_sources tests/c/test_capi.c tests/c/arrow_testing.c tests/c/lock_key_vectors.c)
foreach(_variant shared static)
  set(_exe fstore_test_capi_${_variant})
  add_executable(${_exe} ${_capi_sources})
  set_target_properties(${_exe} PROPERTIES C_STANDARD 99 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF)
  target_compile_options(${_exe} PRIVATE -Wall -Wextra -Werror -pedantic)
  target_include_directories(${_exe} PRIVATE include)
  if(_variant STREQUAL "shared")
    target_link_libraries(${_exe} PRIVATE fstore::fstore Threads::Threads)
  else()
    target_link_libraries(${_exe} PRIVATE fstore::fstore_static Threads::Threads)
  endif()
  add_test(NAME capi_${_variant} COMMAND ${_exe})
  set_tests_properties(capi_${_variant} PROPERTIES ENVIRONMENT "${_test_env}" TIMEOUT 300 LABELS capi)
endforeach()

# The C++ binding's test (GoogleTest).
find_package(GTest QUIET)
if(NOT GTest_FOUND)
  set(_how "install libgtest-dev (Debian, Ubuntu) or googletest (Fedora, Homebrew), or configure with -DFSTORE_BUILD_TESTS=OFF")
  if(FSTORE_IS_TOP_LEVEL)
    message(FATAL_ERROR "GoogleTest is required for the C++ tests and was not found: ${_how}")
  endif()
  message(WARNING "GoogleTest was not found: libfstore's C++ tests are not built (${_how})")
  return()
endif()
add_executable(fstore_test_cpp bindings/cpp/tests/test_fstore.cpp tests/c/arrow_testing.c
                               tests/c/lock_key_vectors.c)
target_include_directories(fstore_test_cpp PRIVATE tests/c include)
target_compile_options(fstore_test_cpp PRIVATE -Wall -Wextra -Werror
                       $<$<COMPILE_LANGUAGE:CXX>:-pedantic>)
target_link_libraries(fstore_test_cpp PRIVATE fstore::cpp GTest::gtest_main Threads::Threads)
include(GoogleTest)
# Labelled, so that a build of this target alone (the sanitizer builds of
# bindings/cpp/run_tests.sh) runs it with `ctest -L cpp`.
gtest_discover_tests(fstore_test_cpp PROPERTIES ENVIRONMENT "${_test_env}" TIMEOUT 120 LABELS cpp
                     DISCOVERY_TIMEOUT 60)
