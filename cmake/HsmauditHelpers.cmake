# Helper functions shared by every component's CMakeLists.txt.
#
#   hsmaudit_add_library(<name> SOURCES ... [DEPS ...] [PRIVATE_DEPS ...])
#       builds library hsmaudit_<name>, aliased hsmaudit::<name>; its headers are included by
#       their path from the repository root ("mac/chain_writer.h").
#   hsmaudit_add_interface(<name> [DEPS ...])
#       a header-only library hsmaudit::<name> (the interfaces other components implement).
#
# Per-target include directories: a library's PUBLIC include directory is a tree of its own
# headers only (build/include/<folder>/, symbolic links to the sources, made at configure time),
# not the repository root. A file can include a header only if its target links the library
# that owns it, so an undeclared dependency fails to build. scripts/check_layers checks that
# every include points down the layers (docs/ARCHITECTURE.md).
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

# hsmaudit_header_tree(<out_var>): the include tree of the current folder's headers: every *.h
# under CMAKE_CURRENT_SOURCE_DIR, except in sub-folders that have their own CMakeLists.txt (they
# belong to other targets), linked under build/include/<folder>/<its path from the root>/.
function(hsmaudit_header_tree out_var)
  file(REAL_PATH "${HSMAUDIT_ROOT}" root)
  file(RELATIVE_PATH rel "${root}" "${CMAKE_CURRENT_SOURCE_DIR}")
  string(REPLACE "/" "_" tree_name "${rel}")
  set(tree "${CMAKE_BINARY_DIR}/include/${tree_name}")
  get_property(done GLOBAL PROPERTY HSMAUDIT_TREE_${tree_name})
  if(NOT done)
    set_property(GLOBAL PROPERTY HSMAUDIT_TREE_${tree_name} TRUE)
    file(REMOVE_RECURSE "${tree}")
    file(GLOB_RECURSE headers CONFIGURE_DEPENDS RELATIVE "${CMAKE_CURRENT_SOURCE_DIR}"
         "${CMAKE_CURRENT_SOURCE_DIR}/*.h")
    foreach(h ${headers})
      get_filename_component(dir "${h}" DIRECTORY)
      set(owned TRUE)
      while(dir)
        if(EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/${dir}/CMakeLists.txt")
          set(owned FALSE)
        endif()
        get_filename_component(dir "${dir}" DIRECTORY)
      endwhile()
      if(owned)
        get_filename_component(link_dir "${tree}/${rel}/${h}" DIRECTORY)
        file(MAKE_DIRECTORY "${link_dir}")
        file(CREATE_LINK "${CMAKE_CURRENT_SOURCE_DIR}/${h}" "${tree}/${rel}/${h}" SYMBOLIC)
      endif()
    endforeach()
  endif()
  set(${out_var} "${tree}" PARENT_SCOPE)
endfunction()

function(hsmaudit_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(hsmaudit_${name} STATIC ${ARG_SOURCES})
  add_library(hsmaudit::${name} ALIAS hsmaudit_${name})
  hsmaudit_header_tree(tree)
  target_include_directories(hsmaudit_${name} PUBLIC "${tree}")
  target_link_libraries(hsmaudit_${name} PUBLIC ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  hsmaudit_set_warnings(hsmaudit_${name})
  hsmaudit_apply_sanitizers(hsmaudit_${name})
endfunction()

function(hsmaudit_add_interface name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  add_library(hsmaudit_${name} INTERFACE)
  add_library(hsmaudit::${name} ALIAS hsmaudit_${name})
  hsmaudit_header_tree(tree)
  target_include_directories(hsmaudit_${name} INTERFACE "${tree}")
  target_link_libraries(hsmaudit_${name} INTERFACE ${ARG_DEPS})
endfunction()

# The tests' and benchmarks' own helpers (tests/support, tests/integration/common, ...): the
# whole tests/ and bench/ folders, never the production sources.
function(hsmaudit_test_include_tree out_var)
  set(tree "${CMAKE_BINARY_DIR}/include/_tests")
  if(NOT EXISTS "${tree}/tests")
    file(MAKE_DIRECTORY "${tree}")
    file(CREATE_LINK "${HSMAUDIT_ROOT}/tests" "${tree}/tests" SYMBOLIC)
    file(CREATE_LINK "${HSMAUDIT_ROOT}/bench" "${tree}/bench" SYMBOLIC)
  endif()
  set(${out_var} "${tree}" PARENT_SCOPE)
endfunction()

function(hsmaudit_add_executable name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS})
  file(REAL_PATH "${HSMAUDIT_ROOT}" root)
  if(CMAKE_CURRENT_SOURCE_DIR MATCHES "^${root}/(bench|tests)(/|$)")
    hsmaudit_test_include_tree(tests_tree)  # benchmarks and test tools share the tests' helpers
    target_include_directories(${name} PRIVATE "${tests_tree}")
  endif()
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
  hsmaudit_test_include_tree(tests_tree)
  target_include_directories(${name} PRIVATE "${tests_tree}")  # shared test helpers: tests/integration/common/
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
  # One aggregate target per label (hsmaudit_tests_unit, ...): CI's ASan stage runs only the unit
  # tests, so it builds only them (and what they depend on) instead of the whole tree.
  foreach(label ${ARG_LABELS})
    if(NOT TARGET hsmaudit_tests_${label})
      add_custom_target(hsmaudit_tests_${label})
    endif()
    add_dependencies(hsmaudit_tests_${label} ${name})
  endforeach()
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
