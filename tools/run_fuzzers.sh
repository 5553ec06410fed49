#!/usr/bin/env bash
# Builds every libFuzzer target (tests/fuzz/fuzz_*.cpp) with clang and runs each for N seconds.
#   tools/run_fuzzers.sh [SECONDS=60] [BUILD_DIR=build-fuzz]
# Env: JOBS (build jobs, default 1), FUZZ_ARGS (extra libFuzzer flags, e.g. "-jobs=2").
# Needs the Debian packages clang-14 libclang-rt-14-dev libomp-14-dev. Exits non-zero when a
# fuzzer finds a crash; the reproducer is left in BUILD_DIR/fuzz-artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
dir="${2:-build-fuzz}"
jobs="${JOBS:-1}"

cmake -S . -B "$dir" -G Ninja -DNIBBLE_FUZZ=ON -DNIBBLE_CUDA=OFF -DNIBBLE_NATIVE=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 >/dev/null

status=0
for src in tests/fuzz/fuzz_*.cpp; do
  name="$(basename "$src" .cpp)"
  cmake --build "$dir" --target "$name" -j "$jobs"
  corpus="$dir/fuzz-corpus/$name"
  artifacts="$dir/fuzz-artifacts/$name"
  mkdir -p "$corpus" "$artifacts"
  # Seeds: a target's own tests/fuzz/corpus/<name>/ when present; the tokenizer fuzzer also
  # gets the small tokenizer.json files (mode byte 0) and some text (mode byte 1).
  if [ -d "tests/fuzz/corpus/$name" ]; then cp -n "tests/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null || true; fi
  if [ "$name" = fuzz_tokenizer ]; then
    for f in tests/data/tokenizer/tiny_*/tokenizer.json; do
      seed="$corpus/seed_json_$(basename "$(dirname "$f")")"
      [ -f "$seed" ] || { printf '\000' > "$seed"; cat "$f" >> "$seed"; }
    done
    printf '\001Hello <|bos|> world 123 caf\303\251 \360\237\230\200\n\t x' > "$corpus/seed_text"
  fi
  echo "== $name: ${secs}s (log: $dir/$name.log)"
  # libFuzzer reports every new coverage point; keep that in the log and show the summary.
  # shellcheck disable=SC2086
  if "$dir/fuzz/$name" "$corpus" -max_total_time="$secs" -max_len=65536 -timeout=20 -rss_limit_mb=4096 \
      -artifact_prefix="$artifacts/" -print_final_stats=1 ${FUZZ_ARGS:-} >"$dir/$name.log" 2>&1; then
    grep -E "^Done|stat::number_of_executed_runs|stat::peak_rss_mb" "$dir/$name.log" || true
  else
    tail -n 60 "$dir/$name.log"
    echo "!! $name failed; reproducer in $artifacts/" >&2
    status=1
  fi
done
exit $status
