# libFuzzer targets: every tests/fuzz/fuzz_*.cpp becomes an executable of that name, built with
# -fsanitize=fuzzer,address,undefined. Include this right after the global add_compile_options
# so that the modules the fuzzers link are instrumented too (coverage feedback needs that):
#   include(NibbleFuzz)
# Configure with clang (tools/run_fuzzers.sh does): -DNIBBLE_FUZZ=ON
#   -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14
# Debian packages: clang-14 libclang-rt-14-dev libomp-14-dev (OpenMP for clang).
if(NOT NIBBLE_FUZZ)
  return()
endif()
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "NIBBLE_FUZZ=ON needs clang: -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14")
endif()

set(NIBBLE_FUZZ_SANITIZERS "address,undefined" CACHE STRING "Sanitizers for fuzz builds")
add_compile_options(-fsanitize=fuzzer-no-link,${NIBBLE_FUZZ_SANITIZERS} -fno-omit-frame-pointer -g)
add_link_options(-fsanitize=${NIBBLE_FUZZ_SANITIZERS})

# Each fuzzer links the module it exercises: fuzz_<module>.cpp -> nibble_<module>, else the
# module named by the last word (fuzz_chat_template.cpp -> nibble_template), else every module.
file(GLOB nibble_fuzz_srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_*.cpp)
foreach(src ${nibble_fuzz_srcs})
  get_filename_component(name ${src} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" module ${name})
  string(REGEX REPLACE "^.*_" "" last_word ${module})
  add_executable(${name} ${src})
  target_compile_features(${name} PRIVATE cxx_std_20)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  if(IS_DIRECTORY ${CMAKE_SOURCE_DIR}/src/${module})
    target_link_libraries(${name} PRIVATE nibble_${module})
  elseif(IS_DIRECTORY ${CMAKE_SOURCE_DIR}/src/${last_word})
    target_link_libraries(${name} PRIVATE nibble_${last_word})
  elseif(module STREQUAL "gguf")  # the reader and the block decoders
    target_link_libraries(${name} PRIVATE nibble_io nibble_quant)
  else()
    target_link_libraries(${name} PRIVATE nibble_all_modules)
  endif()
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
endforeach()
