#!/usr/bin/env bash
# The GPU backend on the GPU machine in one call: CUDA op tests, the GPU model's tests (goldens,
# greedy vs the CPU, OOM), and the end-to-end benchmark with its transformers+bitsandbytes anchor
# measured in the same run. Prints a short table last.
#
#   tools/run_gpu_checks.sh pack          here: build nibble, test_e2e, nibble_cuda_ops_test and nibble_gemv_bench
#                                         (sm_90a;sm_80) and pack them with the shared libraries
#                                         the GPU machine lacks into .whl/gpu (git-ignored); the
#                                         device call carries ".whl"
#   tools/run_gpu_checks.sh [tests|bench|all]   on the GPU machine; results under $OUT. KERNELS=1
#                                         adds `nibble bench --kernels --quick` (the gemv list of the
#                                         results file), SKIP_ANCHOR=1 skips transformers+bnb,
#                                         QUANTS="nf4 int4 mxfp4" the formats, PDL_AB=1 a run without PDL
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PKG=.whl/gpu

if [[ "${1:-}" == "pack" ]]; then
  cmake --build build --target nibble test_e2e nibble_cuda_ops_test nibble_gemv_bench -j"${JOBS:-2}" >/dev/null || exit 1
  rm -rf "$PKG" /tmp/nibble_gpu_pkg && mkdir -p "$PKG" /tmp/nibble_gpu_pkg/bin /tmp/nibble_gpu_pkg/lib
  cp build/bin/nibble build/tests/test_e2e build/bin/nibble_cuda_ops_test build/bin/nibble_gemv_bench /tmp/nibble_gpu_pkg/bin/
  strip --strip-debug /tmp/nibble_gpu_pkg/bin/*
  for lib in $(ldd build/bin/nibble build/tests/test_e2e | awk '/=>/ {print $3}' | sort -u |
               grep -E 'libfmt|libgomp|libpcre2|libicu|libcudart'); do
    cp -L "$lib" /tmp/nibble_gpu_pkg/lib/
  done
  tar -C /tmp/nibble_gpu_pkg -cJf "$PKG/pkg.tar.xz" bin lib
  du -sh "$PKG"
  exit 0
fi

MODE=${1:-all}
OUTDIR=${OUT:-/tmp/out}
mkdir -p "$OUTDIR" /tmp/pkg
tar -C /tmp/pkg -xJf "$PKG/pkg.tar.xz" || exit 1
# cuBLAS from the machine's CUDA toolkit or PyTorch's wheel; the rest from the package.
CUBLAS=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(nvidia.cublas.__path__[0], "lib"))' 2>/dev/null)
export LD_LIBRARY_PATH=/tmp/pkg/lib:/usr/local/cuda/lib64:${CUBLAS}:${LD_LIBRARY_PATH:-}
# The tests find tests/data at the path they were built in.
if [[ ! -e /work/main/tests/data ]]; then mkdir -p /work && ln -sfn "$ROOT" /work/main; fi
BIN=/tmp/pkg/bin
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.used --format=csv,noheader || true
: > "$OUTDIR/summary.txt"

if [[ $MODE == tests || $MODE == all ]]; then
  echo "== CUDA op tests, each in its own process"
  for t in $("$BIN/nibble_cuda_ops_test" --gtest_list_tests | awk '/^[^ ]/ {s=$1} /^  / {print s $1}'); do
    if timeout 120 "$BIN/nibble_cuda_ops_test" --gtest_filter="$t" >> "$OUTDIR/ops_tests.log" 2>&1; then echo "PASS $t"; else echo "FAIL $t"; fi
  done > "$OUTDIR/ops_tests.txt"
  echo "ops tests: $(grep -c PASS "$OUTDIR/ops_tests.txt") passed, $(grep -c FAIL "$OUTDIR/ops_tests.txt") failed" | tee -a "$OUTDIR/summary.txt"
  grep FAIL "$OUTDIR/ops_tests.txt" | tee -a "$OUTDIR/summary.txt"
  echo "== GPU model tests"
  for t in $("$BIN/test_e2e" --gtest_list_tests --gtest_filter='*Cuda*' | awk '/^[^ ]/ {s=$1} /^  / {print s $1}'); do
    if timeout 300 "$BIN/test_e2e" --gtest_filter="$t" >> "$OUTDIR/model_tests.log" 2>&1; then echo "PASS $t"; else echo "FAIL $t"; fi
  done > "$OUTDIR/model_tests.txt"
  echo "model tests: $(grep -c PASS "$OUTDIR/model_tests.txt") passed, $(grep -c FAIL "$OUTDIR/model_tests.txt") failed" | tee -a "$OUTDIR/summary.txt"
  grep FAIL "$OUTDIR/model_tests.txt" | tee -a "$OUTDIR/summary.txt"
  grep -E "Failure|Expected|Which is|actual|error" "$OUTDIR/model_tests.log" | head -20
fi

if [[ $MODE == bench || $MODE == all ]]; then
  DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '-' | tr -cd 'A-Za-z0-9._-')
  RES=$OUTDIR/e2e_${DEV}_$(date -u +%Y-%m-%d).json
  CFG=bench/configs/llama3-8b.json
  if [[ -n "${KERNELS:-}" ]]; then  # the GEMV sweep into the same results file (gemv list)
    echo "== nibble bench --kernels --quick"
    timeout 300 "$BIN/nibble" bench --kernels --quick --out "$RES" > "$OUTDIR/kernels.log" 2>&1; echo "kernels rc=$?"
  fi
  echo "== anchor: transformers + bitsandbytes NF4, same run"
  [[ -n "${SKIP_ANCHOR:-}" ]] || PYTHONPATH=$ROOT/.whl/bnb:${PYTHONPATH:-} PYTHONUNBUFFERED=1 timeout ${ANCHOR_TIMEOUT:-240} \
    python3 bench/e2e_anchor.py $CFG --prompt 512 --gen 128 --batch 1 16 > "$OUTDIR/anchor.jsonl" 2> "$OUTDIR/anchor.log"
  echo "anchor rc=$?"; tail -3 "$OUTDIR/anchor.log"; cat "$OUTDIR/anchor.jsonl"
  echo "== nibble bench (random weights, Llama-3-8B shape)"
  for q in ${QUANTS:-nf4}; do
    for b in 1 16; do
      echo "-- $q, batch $b" | tee -a "$OUTDIR/summary.txt"
      timeout 200 "$BIN/nibble" bench --device cuda --config $CFG --random-weights --quant $q --prompt 512 --gen 128 \
        --batch $b --out "$RES" --anchor "$OUTDIR/anchor.jsonl" 2>&1 | tail -4 | tee -a "$OUTDIR/summary.txt"
    done
  done
  echo "-- nf4, batch 1, every kernel launched (no CUDA graph)" | tee -a "$OUTDIR/summary.txt"
  timeout 200 "$BIN/nibble" bench --device cuda --config $CFG --random-weights --quant nf4 --prompt 512 --gen 64 \
    --batch 1 --no-graphs 2>&1 | tail -2 | tee -a "$OUTDIR/summary.txt"
  echo "-- a model folder through the CLI (-m, weights uploaded from the CPU model)" | tee -a "$OUTDIR/summary.txt"
  timeout 100 "$BIN/nibble" bench --device cuda -m tests/data/models/qwen3_headdim --prompt 100 --gen 32 2>&1 |
    tail -2 | tee -a "$OUTDIR/summary.txt"
  if [[ -n "${PDL_AB:-}" ]]; then
    for b in 1 16; do
      echo "-- nf4, batch $b, programmatic dependent launch off" | tee -a "$OUTDIR/summary.txt"
      NIBBLE_NO_PDL=1 timeout 200 "$BIN/nibble" bench --device cuda --config $CFG --random-weights --quant nf4 \
        --prompt 512 --gen 128 --batch $b 2>&1 | tail -2 | tee -a "$OUTDIR/summary.txt"
    done
  fi
  echo "-- time to first token, 2048-token prompt" | tee -a "$OUTDIR/summary.txt"
  timeout 200 "$BIN/nibble" bench --device cuda --config $CFG --random-weights --quant nf4 --prompt 2048 --gen 8 \
    --batch 1 --out "$RES" 2>&1 | tail -4 | tee -a "$OUTDIR/summary.txt"
fi
echo "======== summary"
cat "$OUTDIR/summary.txt"
