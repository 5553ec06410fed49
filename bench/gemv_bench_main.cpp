// nibble_gemv_bench: the stand-alone GEMV benchmark (tools/run_gemv_bench.sh carries it).
#include "gemv_bench.h"

int main(int argc, char** argv) { return gemv_bench_main(argc, argv); }
