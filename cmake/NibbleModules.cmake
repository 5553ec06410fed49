# nibble_module(NAME DEPS ...): src/NAME/*.cpp (and subfolders other than cuda/) as the
# static library nibble_NAME. A module with no sources yet is an INTERFACE library so
# that its dependants still link.
function(nibble_module name)
  cmake_parse_arguments(M "" "" "DEPS" ${ARGN})
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${name}/*.cpp)
  list(FILTER srcs EXCLUDE REGEX "/cuda/")
  if(srcs)
    add_library(nibble_${name} STATIC ${srcs})
    target_include_directories(nibble_${name} PUBLIC ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
    target_link_libraries(nibble_${name} PUBLIC ${M_DEPS})
  else()
    add_library(nibble_${name} INTERFACE)
    target_include_directories(nibble_${name} INTERFACE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
    target_link_libraries(nibble_${name} INTERFACE ${M_DEPS})
  endif()
endfunction()

# Every folder tests/unit/NAME/ becomes one GoogleTest executable test_NAME linked against
# every module; tests/ops/ likewise becomes test_ops. Tests find their data through
# NIBBLE_TEST_DATA (tests/data) and the shared folder through NIBBLE_SHARED_DIR.
function(nibble_tests)
  set(shared_dir "${CMAKE_SOURCE_DIR}/../shared")
  file(GLOB dirs LIST_DIRECTORIES true ${CMAKE_SOURCE_DIR}/tests/unit/* ${CMAKE_SOURCE_DIR}/tests/ops ${CMAKE_SOURCE_DIR}/tests/e2e)
  foreach(dir ${dirs})
    if(NOT IS_DIRECTORY ${dir})
      continue()
    endif()
    file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${dir}/*.cpp)
    if(NOT srcs)
      continue()
    endif()
    get_filename_component(name ${dir} NAME)
    add_executable(test_${name} ${srcs})
    target_link_libraries(test_${name} PRIVATE nibble_runtime nibble_all_modules GTest::gtest GTest::gtest_main)
    target_compile_definitions(test_${name} PRIVATE
      NIBBLE_TEST_DATA="${CMAKE_SOURCE_DIR}/tests/data"
      NIBBLE_SHARED_DIR="${shared_dir}"
      NIBBLE_BINARY="$<TARGET_FILE:nibble>")
    set_target_properties(test_${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
    add_dependencies(test_${name} nibble)
    gtest_discover_tests(test_${name} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 600)
  endforeach()
endfunction()
