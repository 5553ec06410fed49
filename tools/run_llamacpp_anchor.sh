#!/usr/bin/env bash
# The llama.cpp anchor for the 4-bit GEMV benchmark, on the GPU machine, in one go: build ggml
# (llama.cpp's tensor library, as vendored by llama-cpp-python's PyPI sdist under .whl/llamacpp)
# with its CUDA backend for sm_90, build bench/llamacpp_mulmat against it, and time MUL_MAT for
# Q4_0, MXFP4 and IQ4_NL on the 15 layer shapes at M = 1, 8, 32. Writes $OUT/llamacpp_mulmat.json
# (feed it to `nibble_gemv_bench --llamacpp-anchors` or `nibble bench --kernels --llamacpp-anchor`)
# and prints the build time and a short table last. Needs no network.
#
#   tools/run_llamacpp_anchor.sh [LLAMACPP_MULMAT ARGS...]     e.g. --quick, --only llama8b.down
#   tools/run_llamacpp_anchor.sh build                           only build (a first device call)
#
# The build (about 180 steps, most of them nvcc) is incremental: if it runs past BUILD_TIMEOUT the
# script stops with rc 3, and the same command again on the same (still warm) machine carries on
# where it stopped, since BUILD lies in the repository copy, which the device keeps between calls.
#
# Environment: OUT (results folder, default /tmp/out), JOBS (default 16), CUDA_ARCH (default 90:
# sm_90 code + compute_90 PTX; ggml has no sm_90a-only code), BUILD (default build-llamacpp, git-
# ignored; the ggml sources are unpacked in it), BUILD_TIMEOUT (s, default 480), RUN_TIMEOUT (s,
# default 240),
# GEMV_BENCH (a nibble_gemv_bench binary: when set it runs right after with --llamacpp-anchors,
# GEMV_ARGS passed to it, so nibble's kernels and llama.cpp's are timed in the same session).
# The JSON is also copied to $BUILD/llamacpp_mulmat.json, for a later call on the same machine.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}
JOBS=${JOBS:-16}
CUDA_ARCH=${CUDA_ARCH:-90}
BUILD=${BUILD:-build-llamacpp}
SRC=$BUILD/src
BUILD_ONLY=0
if [[ "${1:-}" == "build" ]]; then BUILD_ONLY=1; shift; fi
mkdir -p "$OUT" "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
die() { echo "run_llamacpp_anchor: $*" >&2; exit 1; }
[[ -d /usr/local/cuda/bin ]] && export PATH=/usr/local/cuda/bin:$PATH
command -v cmake >/dev/null || die "cmake not found"
command -v nvcc >/dev/null || die "nvcc not found (CUDA toolkit)"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,memory.used --format=csv,noheader || true
fi

# The sdist: the cut-down ggml tarball (.whl/llamacpp/SOURCE.txt) or the whole sdist, either works.
TARBALL=$(ls .whl/llamacpp/llama_cpp_python-*-ggml.tar.gz 2>/dev/null | tail -1 || true)
[[ -n "$TARBALL" ]] || TARBALL=$(ls .whl/llamacpp/llama_cpp_python-*.tar.gz 2>/dev/null | tail -1 || true)
[[ -n "$TARBALL" ]] || die "no llama-cpp-python sdist under .whl/llamacpp (carry .whl/llamacpp; see its SOURCE.txt)"
VER=$(basename "$TARBALL" | sed -E 's/^llama_cpp_python-([0-9.]+).*/\1/')
echo "== ggml from $TARBALL (llama-cpp-python $VER)"
# Unpacked once per tarball (tar keeps the files' times, so a re-run does not rebuild).
if [[ "$(cat "$SRC/.from" 2>/dev/null || true)" != "$TARBALL" ]]; then
  rm -rf "$SRC" && mkdir -p "$SRC"
  tar xzf "$TARBALL" -C "$SRC" --wildcards '*/vendor/llama.cpp/ggml/*' || die "cannot unpack $TARBALL"
  echo "$TARBALL" > "$SRC/.from"
fi
GGML_SRC=$(ls -d "$SRC"/*/vendor/llama.cpp/ggml | head -1)
[[ -f "$GGML_SRC/src/ggml-cuda/ggml-cuda.cu" ]] || die "$GGML_SRC has no CUDA backend"
grep -q GGML_TYPE_MXFP4 "$GGML_SRC/include/ggml.h" || die "this ggml has no GGML_TYPE_MXFP4"

GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
echo "== configure + build ggml (CUDA, sm_$CUDA_ARCH, no FlashAttention kernels) and llamacpp_mulmat, -j$JOBS"
T0=$(date +%s)
# Only the library is built: ggml's tests and examples are off in bench/llamacpp_mulmat/CMakeLists.txt.
if ! cmake -S bench/llamacpp_mulmat -B "$BUILD" "${GEN[@]}" -DGGML_SRC="$GGML_SRC" -DCMAKE_BUILD_TYPE=Release \
     -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" -DGGML_CUDA_FA=OFF -DGGML_CUDA_GRAPHS=ON \
     -DGGML_CUDA_NCCL=OFF -DGGML_CUDA_COMPRESSION_MODE=none -DGGML_NATIVE=OFF -DGGML_CCACHE=OFF > "$OUT/llamacpp_configure.log" 2>&1; then
  tail -30 "$OUT/llamacpp_configure.log"
  die "cmake configure failed (log: $OUT/llamacpp_configure.log)"
fi
set +e
timeout "${BUILD_TIMEOUT:-480}" cmake --build "$BUILD" --target llamacpp_mulmat -j"$JOBS" > "$OUT/llamacpp_build.log" 2>&1
RC=$?
set -e
BUILD_S=$(( $(date +%s) - T0 ))
if [[ $RC == 124 ]]; then
  tail -3 "$OUT/llamacpp_build.log"
  echo "run_llamacpp_anchor: build stopped at BUILD_TIMEOUT=${BUILD_TIMEOUT:-480} s; run the same command again to finish it" >&2
  exit 3
elif [[ $RC != 0 ]]; then
  grep -iE "error|fatal" "$OUT/llamacpp_build.log" | head -20 || true
  tail -15 "$OUT/llamacpp_build.log"
  die "build failed after ${BUILD_S} s (log: $OUT/llamacpp_build.log)"
fi
echo "build: ${BUILD_S} s ($(grep -c '^\[' "$OUT/llamacpp_build.log" || true) steps this call)"
[[ $BUILD_ONLY == 1 ]] && exit 0

echo "== llamacpp_mulmat (CUDA backend)"
JSON=$OUT/llamacpp_mulmat.json
set +e
timeout "${RUN_TIMEOUT:-240}" "$BUILD/llamacpp_mulmat" --backend cuda --out "$JSON" \
  --source "llama-cpp-python $VER sdist (vendor/llama.cpp/ggml)" "$@" > "$OUT/llamacpp_mulmat.log" 2>&1
RC=$?
set -e
# $OUT is new on every device call; a copy beside the build outlives it for a later call.
[[ -f "$JSON" ]] && cp "$JSON" "$BUILD/llamacpp_mulmat.json"
grep -vE "^[a-z0-9.-]+ +(q4_0|mxfp4|iq4_nl) +M=" "$OUT/llamacpp_mulmat.log" | tail -8 || true
echo "llamacpp_mulmat rc=$RC ($(grep -cE " M= ?[0-9]+ " "$OUT/llamacpp_mulmat.log" || true) measurements, log: $OUT/llamacpp_mulmat.log)"

if [[ -n "${GEMV_BENCH:-}" && -f "$JSON" ]]; then
  echo "== nibble_gemv_bench with the llama.cpp anchors, same session"
  GEMV_LIB=$(dirname "$GEMV_BENCH")/../lib  # tools/run_gemv_bench.sh's unpacked binaries keep their libraries there
  [[ -d "$GEMV_LIB" ]] && export LD_LIBRARY_PATH=$GEMV_LIB:${LD_LIBRARY_PATH:-}
  # shellcheck disable=SC2086
  timeout 300 "$GEMV_BENCH" --llamacpp-anchors "$JSON" --out "$OUT/gemv_vs_llamacpp.json" ${GEMV_ARGS:-} \
    > "$OUT/gemv_vs_llamacpp.log" 2>&1 || echo "nibble_gemv_bench rc=$? (log: $OUT/gemv_vs_llamacpp.log)"
  sed -n '/^format   M   geo_frac/,/^$/p' "$OUT/gemv_vs_llamacpp.log"
fi

# The short table: us per matmul (slope; test-backend-ops style in the log as 'plain').
echo "== llama.cpp MUL_MAT, us per matmul (build ${BUILD_S} s, ggml of llama-cpp-python $VER)"
if [[ -f "$JSON" ]] && command -v python3 >/dev/null; then
  python3 - "$JSON" <<'EOF' || echo "(table failed; the JSON and log are in $OUT)"
import json, math, sys
d = json.load(open(sys.argv[1]))
nan = float("nan")
def val(r, key):  # a number, or nan where missing or null (non-finite)
    v = r.get(key) if r else None
    return float(v) if isinstance(v, (int, float)) else nan
rows = {(r["shape"], r["M"]): r for r in d["rows"]}
shapes = list(dict.fromkeys(r["shape"] for r in d["rows"]))
cols = [(t, m) for m in (1, 8, 32) for t in ("q4_0", "mxfp4", "iq4_nl")]
cols = [(t, m) for t, m in cols if any(r["M"] == m and f"{t}_us" in r for r in d["rows"])]
print(d["device"], "|", d.get("ggml", ""))
print(f"{'shape':19s}" + "".join(f"{t:>7s}@{m:<2d}" for t, m in cols))
for s in shapes:
    print(f"{s:19s}" + "".join(f"{val(rows.get((s, m)), t + '_us'):10.1f}" for t, m in cols))
def geo(v):
    v = [x for x in v if x > 0]
    return math.exp(sum(map(math.log, v)) / len(v)) if v else nan
def col(t, m, f):
    return [f(r) for r in d["rows"] if r["M"] == m and f"{t}_us" in r]
print(f"{'TB/s geomean':19s}" + "".join(
    f"{geo(col(t, m, lambda r: val(r, t + '_bytes') / val(r, t + '_us') / 1e6)):10.2f}" for t, m in cols))
print(f"{'max rel_err':19s}" + "".join(
    f"{max(col(t, m, lambda r: val(r, t + '_rel_err')), key=lambda x: math.inf if x != x else x):10.1e}" for t, m in cols))
r = rows.get(("llama8b.down", 1))
if r:
    print(f"llama8b.down M=1: q4_0 {val(r, 'q4_0_us'):.1f} us (plain {val(r, 'q4_0_plain_us'):.1f}), mxfp4 "
          f"{val(r, 'mxfp4_us'):.1f} us; published test-backend-ops (no rotation): q4_0 14.3, mxfp4 19.5 us")
EOF
else
  grep -E " M= ?[0-9]+ " "$OUT/llamacpp_mulmat.log" | cut -c1-120 || true
fi
exit "$RC"
