# The CUDA ops (src/ops/cuda) as the static library nibble_ops_cuda, the GEMV benchmark
# nibble_gemv_bench, and the CUDA half of test_ops. Include after nibble_tests() in the top-level
# CMakeLists.txt. Does nothing when the CUDA backend is off (NibbleCuda.cmake decides).
if(NOT NIBBLE_HAVE_CUDA)
  return()
endif()

file(GLOB nibble_cuda_srcs CONFIGURE_DEPENDS
  ${CMAKE_SOURCE_DIR}/src/ops/cuda/*.cu ${CMAKE_SOURCE_DIR}/src/ops/cuda/*.cpp)
add_library(nibble_ops_cuda STATIC ${nibble_cuda_srcs})
target_include_directories(nibble_ops_cuda PUBLIC ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(nibble_ops_cuda PUBLIC CUDA::cudart nibble_ops nibble_quant nibble_core)
target_compile_definitions(nibble_ops_cuda PUBLIC NIBBLE_HAVE_CUDA=1)
# CMake 3.25 knows no C++20 switch for nvcc and would otherwise inherit CXX_STANDARD 20 for the
# .cu files: they are written in C++17 (the .cpp files of the library stay C++20).
set_target_properties(nibble_ops_cuda PROPERTIES
  CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON POSITION_INDEPENDENT_CODE ON)
# -Xptxas -v would print registers / spills per kernel; --expt-relaxed-constexpr lets device code
# read the constexpr configuration table.
target_compile_options(nibble_ops_cuda PRIVATE
  $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -lineinfo -Xptxas=-warn-spills,-warn-lmem-usage -Xcompiler=-Wall,-Wno-unused-parameter>)

# The GEMV benchmark: a separate executable, run on the GPU machine by tools/run_gemv_bench.sh.
add_executable(nibble_gemv_bench ${CMAKE_SOURCE_DIR}/bench/gemv_bench.cpp ${CMAKE_SOURCE_DIR}/bench/gemv_bench_main.cpp)
target_link_libraries(nibble_gemv_bench PRIVATE nibble_ops_cuda nibble_quant nibble_core)

# tests/ops/cuda_ops_test.cpp is part of test_ops; give it the CUDA ops and the define it is
# guarded by. (Without CUDA it compiles to a test that says it skipped.)
if(TARGET test_ops)
  target_link_libraries(test_ops PRIVATE nibble_ops_cuda)
endif()

# The same CUDA tests (tests/ops/cuda_*.cpp) as a small stand-alone binary (no tokenizer/ICU dependencies) that
# tools/run_gemv_bench.sh carries to the GPU machine.
file(GLOB nibble_cuda_test_srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/ops/cuda_*.cpp)
# The sampling tests compare with the CPU sampler: its one source file rather than the whole
# runtime library (which would bring the tokenizer and ICU).
add_executable(nibble_cuda_ops_test ${nibble_cuda_test_srcs} ${CMAKE_SOURCE_DIR}/src/runtime/sampler.cpp)
target_link_libraries(nibble_cuda_ops_test PRIVATE nibble_ops_cuda nibble_ops nibble_quant nibble_core
  GTest::gtest GTest::gtest_main)

# The GPU model (src/model/cuda: weights on the device, the forward pass, CUDA graphs) and its
# cuBLAS dependency; the command line and the tests get it (and NIBBLE_HAVE_CUDA) through linking.
file(GLOB nibble_model_cuda_srcs CONFIGURE_DEPENDS
  ${CMAKE_SOURCE_DIR}/src/model/cuda/*.cu ${CMAKE_SOURCE_DIR}/src/model/cuda/*.cpp)
add_library(nibble_model_cuda STATIC ${nibble_model_cuda_srcs})
target_link_libraries(nibble_model_cuda PUBLIC nibble_ops_cuda nibble_model CUDA::cublas)
set_target_properties(nibble_model_cuda PROPERTIES CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON POSITION_INDEPENDENT_CODE ON)
target_compile_options(nibble_model_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo>)
target_link_libraries(nibble PRIVATE nibble_model_cuda)
# `nibble bench --kernels` runs the GEMV benchmark in process.
target_sources(nibble PRIVATE ${CMAKE_SOURCE_DIR}/bench/gemv_bench.cpp)
target_include_directories(nibble PRIVATE ${CMAKE_SOURCE_DIR}/bench)
foreach(t test_e2e test_ops)
  if(TARGET ${t})
    target_link_libraries(${t} PRIVATE nibble_model_cuda)
  endif()
endforeach()
