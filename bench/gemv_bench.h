// The 4-bit GEMV benchmark (gemv_bench.cpp) as a function, so that both the stand-alone
// nibble_gemv_bench and `nibble bench --kernels` run it. Arguments as the stand-alone binary's
// (--out FILE, --anchors FILE, --quick, --format, --m, --chain ...); writes the gemv, summary and
// chain lists of bench/results JSON when --out is given. Returns the process exit code.
#pragma once

int gemv_bench_main(int argc, char** argv);
