// Shared by the GPU model tests (tests/e2e/cuda_*_test.cpp): skip, saying why, where the binary
// was built with CUDA but the machine has no device. Include only under NIBBLE_HAVE_CUDA.
#pragma once

#include <gtest/gtest.h>

#include "ops/cuda/device.h"

#define SKIP_WITHOUT_GPU() \
  if (::nibble::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device here: the GPU backend tests run on the GPU machine"
