# Helper functions shared by every component's CMakeLists.txt.
#
#   hsmaudit_add_library(<name> SOURCES ... [DEPS ...] [PRIVATE_DEPS ...])
#       builds library hsmaudit_<name>, aliased hsmaudit::<name>; headers are
#       included from the repository root ("mac/chain_writer.h").
#   hsmaudit_add_executable(<name> SOURCES ... [DEPS ...])
#   hsmaudit_add_test(<name> SOURCES ... [DEPS ...] LABELS ... [TIMEOUT s] [SERIAL])
#       a GoogleTest binary whose tests are registered with ctest and labelled; SERIAL tests
#       (load, crash and timing proofs) never run beside other tests under ctest -j.

set(HSMAUDIT_ROOT "${CMAKE_CURRENT_LIST_DIR}/..")

function(hsmaudit_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                           -Wno-sign-conversion -Wnon-virtual-dtor)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12 reports false -Wrestrict positives inside std::string at -O2 (GCC bug 105329).
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(HSMAUDIT_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# HSMAUDIT_SANITIZE: OFF, ON (AddressSanitizer + UndefinedBehaviorSanitizer, the asan preset) or
# "thread" (ThreadSanitizer, the tsan preset; the two cannot be combined in one binary).
function(hsmaudit_apply_sanitizers target)
  if(HSMAUDIT_SANITIZE STREQUAL "thread")
    target_compile_options(${target} PRIVATE -fsanitize=thread -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=thread)
  elseif(HSMAUDIT_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer
                                             -fno-sanitize-recover=undefined)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

function(hsmaudit_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(hsmaudit_${name} STATIC ${ARG_SOURCES})
  add_library(hsmaudit::${name} ALIAS hsmaudit_${name})
  target_include_directories(hsmaudit_${name} PUBLIC "${HSMAUDIT_ROOT}")
  target_link_libraries(hsmaudit_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  hsmaudit_set_warnings(hsmaudit_${name})
  hsmaudit_apply_sanitizers(hsmaudit_${name})
endfunction()

function(hsmaudit_add_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  hsmaudit_set_warnings(${name})
  hsmaudit_apply_sanitizers(${name})
endfunction()

function(hsmaudit_add_test name)
  cmake_parse_arguments(ARG "SERIAL" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    message(FATAL_ERROR "hsmaudit_add_test(${name}): LABELS is required")
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  target_include_directories(${name} PRIVATE "${HSMAUDIT_ROOT}")  # shared test helpers: tests/integration/common/
  target_compile_definitions(${name} PRIVATE HSMAUDIT_BINARY_DIR="${CMAKE_BINARY_DIR}"
                                             HSMAUDIT_SOURCE_DIR="${HSMAUDIT_ROOT}")
  hsmaudit_set_warnings(${name})
  hsmaudit_apply_sanitizers(${name})
  set(serial FALSE)
  if(ARG_SERIAL)
    set(serial TRUE)
  endif()
  # gtest_discover_tests flattens PROPERTIES (a list value would misalign every pair after it),
  # so the labels are set by a script ctest includes after the discovered tests (their names are
  # in ${name}_TESTS there).
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 TEST_LIST ${name}_TESTS
                       PROPERTIES TIMEOUT ${ARG_TIMEOUT} RUN_SERIAL ${serial})
  set(labels_script "${CMAKE_CURRENT_BINARY_DIR}/${name}_labels.cmake")
  file(WRITE "${labels_script}"
       "if(${name}_TESTS)\n  set_tests_properties(\${${name}_TESTS} PROPERTIES LABELS \"${ARG_LABELS}\")\nendif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${labels_script}")
endfunction()

# hsmaudit_add_subdirs(<dir>...): add each listed subdirectory that has a CMakeLists.txt.
# The list is explicit (the registration list); a folder that is not named is not built.
function(hsmaudit_add_subdirs)
  foreach(d ${ARGN})
    if(EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/${d}/CMakeLists.txt")
      add_subdirectory(${d})
    endif()
  endforeach()
endfunction()
