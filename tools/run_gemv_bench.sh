#!/usr/bin/env bash
# Build, check and time the 4-bit GEMVs on the GPU machine in one go; prints a short table last.
#
#   tools/run_gemv_bench.sh pack     (here, no GPU needed) build nibble_gemv_bench and
#                                    nibble_cuda_ops_test for sm_90a;sm_80 and put them (stripped,
#                                    with the shared libraries they need, as one bins.tar.xz: the
#                                    raw binaries are ~48 MB and a device call carries 64 MiB in
#                                    all) and bitsandbytes' wheel contents under .whl/ (git-ignored)
#                                    so a device call can carry "$PKG" and ".whl/bnb"
#   tools/run_gemv_bench.sh [--quick] [--no-anchors] [-- BENCH ARGS...]
#                                    (on the GPU machine) tests, anchors, benchmark, then the
#                                    decode-step chain (128 GEMVs of Llama-3-8B in a CUDA graph)
#                                    with and without PDL; results under $OUT (or bench/results
#                                    when OUT is unset). A device call returns at most 8 files:
#                                    the short table at the end of stdout is what always survives.
#
# Environment: BUILD (build folder for `pack`, default build-cuda), ARCHS (for `pack`, default
# "90a;80"), PKG (package folder, default .whl/nibble_gemv: several people can keep their own;
# `pack` empties it, so keep other files elsewhere), TESTS (gtest filter of the tests to run,
# default all; parameterized tests are named Formats/..., so filter with a leading '*', e.g.
# '*CudaGemv*:*CudaW4*'), ANCHORS (an anchors JSON from an earlier session to use with
# --no-anchors; the ratios are then not same-run and the table says so), BENCH_TIMEOUT.
#
# On the GPU machine it uses the carried binaries when $PKG/bin exists, else it builds
# with CMake there. bitsandbytes is imported from .whl/bnb when present (the PyPI wheel's
# libbitsandbytes_cuda130.so), else from whatever python3 finds.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PKG=${PKG:-.whl/nibble_gemv}
BUILD=${BUILD:-build-cuda}

configure_and_build() {  # $1 = build dir, $2 = architectures
  # -UCMAKE_PROJECT_INCLUDE clears what older versions of this script left in the cache (they
  # injected NibbleCudaOps, which the top-level CMakeLists.txt now includes itself).
  cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Release -DNIBBLE_CUDA=ON -UCMAKE_PROJECT_INCLUDE \
    -DCMAKE_CUDA_ARCHITECTURES="$2" >/dev/null &&
    cmake --build "$1" --target nibble_gemv_bench nibble_cuda_ops_test -j"${JOBS:-1}"
}

if [[ "${1:-}" == "pack" ]]; then
  configure_and_build "$BUILD" "${ARCHS:-90a;80}" || exit 1
  rm -rf "$PKG" && mkdir -p "$PKG/tmp/bin" "$PKG/tmp/lib"
  cp "$BUILD"/bin/nibble_gemv_bench "$BUILD"/bin/nibble_cuda_ops_test "$PKG/tmp/bin/"
  strip "$PKG"/tmp/bin/*
  for lib in $(ldd "$PKG"/tmp/bin/* | awk '/=>/ {print $3}' | sort -u | grep -E 'libfmt|libgomp|libcudart'); do
    cp -L "$lib" "$PKG/tmp/lib/"
  done
  tar cJf "$PKG/bins.tar.xz" -C "$PKG/tmp" bin lib && rm -rf "$PKG/tmp"
  if [[ ! -d .whl/bnb/bitsandbytes ]]; then
    mkdir -p .whl/bnb /tmp/bnbwheel
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_24_x86_64 -d /tmp/bnbwheel bitsandbytes==0.50.2 &&
      (cd .whl/bnb && unzip -q -o /tmp/bnbwheel/bitsandbytes-0.50.2-*.whl \
        -x 'bitsandbytes/libbitsandbytes_cuda1[12]*' 'bitsandbytes/libbitsandbytes_cuda132.so' \
           'bitsandbytes/libbitsandbytes_rocm*' 'bitsandbytes/libbitsandbytes_xpu*')
  fi
  du -sh .whl
  exit 0
fi

QUICK=()
RUN_ANCHORS=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=(--quick) ;;
    --no-anchors) RUN_ANCHORS=0 ;;
    --) shift; QUICK+=("$@"); break ;;
  esac
  shift
done
OUTDIR=${OUT:-$ROOT/bench/results}
mkdir -p "$OUTDIR"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.used --format=csv,noheader || true

if [[ -f "$PKG/bins.tar.xz" ]]; then
  mkdir -p /tmp/nibble_gemv && tar xJf "$PKG/bins.tar.xz" -C /tmp/nibble_gemv || exit 1
  BIN=/tmp/nibble_gemv/bin
  export LD_LIBRARY_PATH=/tmp/nibble_gemv/lib:${LD_LIBRARY_PATH:-}
else
  JOBS=16 configure_and_build build-gpu 90a 2>&1 | tail -5 || exit 1
  BIN=build-gpu/bin
fi

echo "== correctness: CUDA ops vs CPU twins (each test in its own process: a fault cannot hide the rest)"
T=$BIN/nibble_cuda_ops_test
: > "$OUTDIR/cuda_ops_test.log"
for t in $("$T" --gtest_list_tests --gtest_filter="${TESTS:-*}" | awk '/^[^ ]/ {s=$1} /^  / {print s $1}'); do
  if timeout 120 "$T" --gtest_filter="$t" >> "$OUTDIR/cuda_ops_test.log" 2>&1; then echo "PASS $t"; else echo "FAIL $t"; fi
done | tee "$OUTDIR/cuda_ops_test.txt" | grep -c PASS | sed 's/^/tests passed: /'
grep FAIL "$OUTDIR/cuda_ops_test.txt"
TEST_RC=$(grep -c FAIL "$OUTDIR/cuda_ops_test.txt")

ANCHOR_JSON=$OUTDIR/gemv_anchors.json
if [[ $RUN_ANCHORS == 1 ]]; then
  echo "== anchors: bitsandbytes NF4 and cuBLAS bf16, same session"
  PYTHONPATH=$ROOT/.whl/bnb:${PYTHONPATH:-} PYTHONUNBUFFERED=1 timeout 200 \
    python3 bench/gemv_anchors.py "$ANCHOR_JSON" > "$OUTDIR/anchors.log" 2>&1
  echo "anchors rc=$? ($(grep -c '^anchor' "$OUTDIR/anchors.log") rows)"; grep -v '^anchor' "$OUTDIR/anchors.log" | tail -5
else
  ANCHOR_JSON=${ANCHORS:-}
  echo "== anchors: not measured in this session${ANCHOR_JSON:+ (ratios use $ANCHOR_JSON, an earlier session)}"
fi

echo "== benchmark"
DEV=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '-' | tr -cd 'A-Za-z0-9._-')
JSON=$OUTDIR/gemv_${DEV}_$(date -u +%Y-%m-%d).json
timeout "${BENCH_TIMEOUT:-300}" "$BIN/nibble_gemv_bench" "${QUICK[@]}" ${ANCHOR_JSON:+--anchors "$ANCHOR_JSON"} --out "$JSON" \
  > "$OUTDIR/bench.log" 2>&1
echo "bench rc=$?"
# The short table: M=1 rows of every shape for NF4, then the per-format geometric means.
grep -E "^device|nf4   M= 1" "$OUTDIR/bench.log" | cut -c1-170
grep "dequant_bf16" "$OUTDIR/bench.log" | awk '{f[$2]+=log($9); n[$2]++} END {for (k in f) printf "dequant_bf16 %s geomean %.2f of copy over %d shapes\n", k, exp(f[k]/n[k]), n[k]}'
sed -n '/^format   M   geo_frac/,/^$/p' "$OUTDIR/bench.log"
# best fixed configuration per (format, M)
sed -n '/^format   M  config/,$p' "$OUTDIR/bench.log" | awk 'NR>1 && NF==4 {k=$1" "$2; if ($4>b[k]) {b[k]=$4; c[k]=$3}} END {for (k in b) print "best fixed config", k, c[k], b[k]}' | sort
echo "== decode-step chain: Llama-3-8B, 4 GEMVs x 32 layers in a CUDA graph, PDL off / on"
NIBBLE_NO_PDL=1 timeout 60 "$BIN/nibble_gemv_bench" --chain-only "${QUICK[@]}" --out "$OUTDIR/chain_nopdl.json" > "$OUTDIR/chain_nopdl.log" 2>&1
timeout 60 "$BIN/nibble_gemv_bench" --chain-only "${QUICK[@]}" --out "$OUTDIR/chain_pdl.json" > "$OUTDIR/chain_pdl.log" 2>&1
grep -h "^chain.*default" "$OUTDIR/chain_nopdl.log" "$OUTDIR/chain_pdl.log" | sed 's/^chain llama8b 4 GEMVs x 32 layers //' | cut -c1-140
echo "tests failed: $TEST_RC"
