#!/usr/bin/env bash
# GPU machine: correctness (each test in its own process, so one fault cannot hide the rest),
# compute-sanitizer on the first failing GEMV test, SASS of the kernels, one Nsight Compute
# profile, and a quick sweep. Uses the binaries tools/run_gemv_bench.sh pack left under
# .whl/nibble_gemv. Output under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
export LD_LIBRARY_PATH=$PWD/.whl/nibble_gemv/lib:${LD_LIBRARY_PATH:-}
B=.whl/nibble_gemv/bin
O=${OUT:-/tmp}
T=$B/nibble_cuda_ops_test
first_fail=""
for t in $($T --gtest_list_tests | awk '/^[^ ]/ {s=$1} /^  / {print s $1}'); do
  if timeout 120 $T --gtest_filter="$t" > $O/t.log 2>&1; then r=PASS; else r=FAIL; [[ -z $first_fail ]] && first_fail=$t; fi
  echo "$r $t $(grep -m1 -E 'Failure|error|Expected' -A2 $O/t.log | tr '\n' ' ' | cut -c1-200)" | tee -a $O/tests.txt
done
if [[ -n $first_fail ]]; then
  timeout 120 compute-sanitizer --tool memcheck --show-backtrace device $T --gtest_filter="$first_fail" > $O/sanitizer.txt 2>&1
  grep -m8 -E "=========" $O/sanitizer.txt | cut -c1-200
fi
cuobjdump -sass -arch sm_90a $B/nibble_gemv_bench > $O/sass_sm90a.txt 2>&1
timeout 90 ncu --clock-control none -k regex:gemv_w4_kernel --launch-skip 1 --launch-count 1 \
  --section SpeedOfLight --section WarpStateStats --section Occupancy --section SchedulerStats \
  --section MemoryWorkloadAnalysis --section LaunchStats \
  $B/nibble_gemv_bench --quick --only ${SHAPE:-llama8b.down} --format nf4 --m 1 > $O/ncu.txt 2>&1
grep -E "Duration|DRAM Throughput|Issued Warp|No Eligible|Registers Per|Achieved Occupancy|Warp Cycles Per Issued" $O/ncu.txt
timeout 200 $B/nibble_gemv_bench --quick --anchors ${ANCHORS:-.whl/anchors_run1.json} --out $O/gemv_quick.json > $O/bench.log 2>&1
echo "bench rc=$?"; grep -m3 -i "error\|illegal" $O/bench.log
grep -E "^device|nf4   M= 1" $O/bench.log | cut -c1-170
sed -n '/^format/,$p' $O/bench.log
