#!/usr/bin/env bash
# Greedy continuations of nibble and llama.cpp on the same GGUF, token for token.
#
#   tools/compare_llamacpp.sh [--numerics exact|llamacpp] [--record FILE] [MODEL.gguf] [N_TOKENS]
#
# --numerics picks nibble's rounding (`nibble run --numerics`, default exact); --record FILE
# writes llama.cpp's prompt ids and greedy continuations as JSON (the test data of
# tests/e2e/llamacpp_numerics_test.cpp), with the llama.cpp commit and the model's sha256.
#
# Builds llama.cpp (CPU, libllama only, from llama-cpp-python's sdist, which vendors it) once
# under $NIBBLE_LLAMACPP_DIR (default ~/.cache/nibble/llamacpp), plus a small driver written
# here against llama.h. For each prompt (plain and chat-formatted):
#   1. nibble's prompt ids (`nibble tokenize`; chat prompts rendered by `nibble chat-template`)
#      and llama.cpp's ids for the same text (llama_tokenize, BOS as the GGUF says) must match;
#   2. `nibble run --temp 0 -n N --json` and llama.cpp's argmax decoding from nibble's ids give
#      the first N tokens; the first differing position is reported with both engines' top-2
#      logit margins there.
# Nothing from llama.cpp is committed; this script only builds it in the cache folder.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NUMERICS=exact
RECORD=
while [ $# -gt 0 ]; do
  case "$1" in
    --numerics) NUMERICS=$2; shift 2 ;;
    --record) RECORD=$2; shift 2 ;;
    *) break ;;
  esac
done
MODEL=${1:-${NIBBLE_MODEL:-$HOME/.cache/nibble/models/SmolLM2-135M-Instruct.Q4_1.gguf}}
N=${2:-32}
NIBBLE=${NIBBLE:-$ROOT/build/bin/nibble}
WORK=${NIBBLE_LLAMACPP_DIR:-$HOME/.cache/nibble/llamacpp}
VERSION=0.3.36
JOBS=${JOBS:-1}

[ -x "$NIBBLE" ] || { echo "no nibble binary at $NIBBLE (set NIBBLE=...)" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "no model at $MODEL" >&2; exit 1; }
mkdir -p "$WORK"

# ---- llama.cpp: sources from the sdist, libllama built once ----
SRC=$WORK/src/vendor/llama.cpp
if [ ! -f "$SRC/include/llama.h" ]; then
  SDIST=$WORK/llama_cpp_python-$VERSION.tar.gz
  for cand in "$SDIST" /tmp/llamacpp/llama_cpp_python-$VERSION.tar.gz; do
    [ -f "$cand" ] && SDIST=$cand && break
  done
  if [ ! -f "$SDIST" ]; then
    pip download --no-deps --no-binary :all: --no-build-isolation -d "$WORK" "llama-cpp-python==$VERSION"
    SDIST=$WORK/llama_cpp_python-$VERSION.tar.gz
  fi
  rm -rf "$WORK/src" && mkdir -p "$WORK/src"
  tar xzf "$SDIST" -C "$WORK/src" --strip-components=1
fi
if [ ! -f "$WORK/build/src/libllama.a" ]; then
  nice -n 10 cmake -S "$SRC" -B "$WORK/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=ON -DGGML_OPENMP=OFF \
    -DLLAMA_CURL=OFF >/dev/null
  nice -n 10 cmake --build "$WORK/build" --target llama -j"$JOBS"
fi
LLAMA_COMMIT=$(cat "$WORK/src/.git/modules/vendor/llama.cpp/HEAD" 2>/dev/null || echo unknown)

# ---- the driver: tokenize, then greedy decoding from given ids, with top-2 margins ----
DRIVER=$WORK/greedy
if [ ! -x "$DRIVER" ] || [ "$0" -nt "$DRIVER" ]; then
  cat > "$WORK/greedy.cpp" <<'EOF'
// greedy MODEL TEXT_FILE IDS N: prints "tok <ids of TEXT with the vocab's default specials>",
// then "gen <id> <top1-top2 logit margin>" for N argmax steps from IDS (comma-separated).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
#include "llama.h"

static void quiet(ggml_log_level, const char*, void*) {}

int main(int argc, char** argv) {
  if (argc != 5) { std::fprintf(stderr, "usage: greedy MODEL TEXT_FILE IDS N\n"); return 2; }
  llama_log_set(quiet, nullptr);
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) { std::fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
  const llama_vocab* vocab = llama_model_get_vocab(model);
  std::ifstream tf(argv[2], std::ios::binary);
  std::stringstream ss; ss << tf.rdbuf();
  const std::string text = ss.str();
  std::vector<llama_token> tok(text.size() + 8);
  const int nt = llama_tokenize(vocab, text.data(), (int)text.size(), tok.data(), (int)tok.size(),
                                /*add_special=*/true, /*parse_special=*/true);
  std::printf("tok");
  for (int i = 0; i < nt; ++i) std::printf(" %d", tok[i]);
  std::printf("\n");
  std::vector<llama_token> ids;
  for (std::stringstream is(argv[3]); is.good();) {
    std::string s; std::getline(is, s, ',');
    if (!s.empty()) ids.push_back(std::atoi(s.c_str()));
  }
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 1024; cp.n_batch = 1024; cp.n_threads = 2; cp.n_threads_batch = 2;
  llama_context* ctx = llama_init_from_model(model, cp);
  const int nv = llama_vocab_n_tokens(vocab);
  const int n = std::atoi(argv[4]);
  for (int step = 0; step < n; ++step) {
    if (llama_decode(ctx, llama_batch_get_one(ids.data(), (int)ids.size())) != 0) { std::fprintf(stderr, "decode failed\n"); return 1; }
    const float* l = llama_get_logits_ith(ctx, -1);
    int best = 0, second = -1;
    for (int i = 1; i < nv; ++i) {
      if (l[i] > l[best]) { second = best; best = i; }
      else if (second < 0 || l[i] > l[second]) second = i;
    }
    std::printf("gen %d %.5f\n", best, l[best] - l[second]);
    if (llama_vocab_is_eog(vocab, best)) break;
    ids.assign(1, best);
  }
  llama_free(ctx);
  llama_model_free(model);
  return 0;
}
EOF
  LIBS=$(find "$WORK/build" -name 'libllama.a' -o -name 'libggml*.a' | tr '\n' ' ')
  g++ -O2 -std=c++17 -I"$SRC/include" -I"$SRC/ggml/include" "$WORK/greedy.cpp" -o "$DRIVER" \
    -Wl,--start-group $LIBS -Wl,--end-group -lpthread -ldl -lm
fi

# ---- the prompts ----
PROMPTS=(
  "plain|The capital of France is"
  "plain|def fibonacci(n):"
  "plain|Once upon a time, in a small village by the sea,"
  "chat|What is the capital of France? Answer in one word."
  "chat|Write a haiku about the ocean."
  "chat|List three prime numbers."
)

json_field() { python3 -c "import json,sys; print(','.join(map(str, json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])))"; }

echo "model: $MODEL"
echo "llama.cpp: $LLAMA_COMMIT (llama-cpp-python $VERSION), nibble: $NIBBLE --numerics $NUMERICS"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
n_same=0
: > "$TMP/record.jsonl"
for entry in "${PROMPTS[@]}"; do
  kind=${entry%%|*}
  text=${entry#*|}
  if [ "$kind" = chat ]; then
    python3 -c "import json,sys; print(json.dumps({'messages': [{'role': 'user', 'content': sys.argv[1]}]}))" "$text" |
      "$NIBBLE" chat-template -m "$MODEL" > "$TMP/prompt.txt"
    ours_prompt=$("$NIBBLE" tokenize -m "$MODEL" < "$TMP/prompt.txt" | python3 -c "import json,sys; print(','.join(map(str, json.load(sys.stdin))))")
    run_args=(--chat)
  else
    printf '%s' "$text" > "$TMP/prompt.txt"
    ours_prompt=$("$NIBBLE" tokenize -m "$MODEL" --add-special < "$TMP/prompt.txt" | python3 -c "import json,sys; print(','.join(map(str, json.load(sys.stdin))))")
    run_args=()
  fi
  ours_gen=$(NIBBLE_NO_PROGRESS=1 "$NIBBLE" run -m "$MODEL" "${run_args[@]}" -p "$text" --temp 0 -n "$N" \
    --numerics "$NUMERICS" --json 2>/dev/null | json_field tokens)
  "$DRIVER" "$MODEL" "$TMP/prompt.txt" "$ours_prompt" "$N" > "$TMP/llama.txt"
  theirs_prompt=$(awk '/^tok/ {$1=""; sub(/^ /,""); gsub(/ /,","); print}' "$TMP/llama.txt")
  theirs_gen=$(awk '/^gen/ {print $2}' "$TMP/llama.txt" | paste -sd, -)
  margins=$(awk '/^gen/ {print $3}' "$TMP/llama.txt" | paste -sd, -)
  python3 -c "import json,sys; ids=lambda s: [int(t) for t in s.split(',') if t]
print(json.dumps({'kind': sys.argv[1], 'text': sys.argv[2], 'prompt_ids': ids(sys.argv[3]),
                  'llamacpp_ids': ids(sys.argv[4]), 'llamacpp_margins': [float(t) for t in sys.argv[5].split(',') if t]}))" \
    "$kind" "$text" "$theirs_prompt" "$theirs_gen" "$margins" >> "$TMP/record.jsonl"
  echo
  echo "[$kind] $text"
  if [ "$ours_prompt" = "$theirs_prompt" ]; then
    echo "  prompt ids: same ($(echo "$ours_prompt" | tr ',' '\n' | wc -l) tokens)"
  else
    echo "  prompt ids DIFFER: nibble [$ours_prompt] llama.cpp [$theirs_prompt]"; fail=1
  fi
  if [ "$ours_gen" = "$theirs_gen" ]; then
    n_same=$((n_same + 1))
    echo "  continuation: same ($(echo "$ours_gen" | tr ',' '\n' | wc -l) tokens): $ours_gen"
    echo "  llama.cpp top1-top2 margins: min $(echo "$margins" | tr ',' '\n' | sort -g | head -1)"
  else
    python3 - "$ours_gen" "$theirs_gen" "$margins" <<'PY'
import sys
a, b, m = (s.split(",") for s in sys.argv[1:4])
i = next(i for i in range(max(len(a), len(b))) if i >= len(a) or i >= len(b) or a[i] != b[i])
print(f"  continuation DIFFERS at generated position {i}: nibble {a[i] if i < len(a) else '(end)'}, "
      f"llama.cpp {b[i] if i < len(b) else '(end)'} (llama.cpp top1-top2 margin there {m[i] if i < len(m) else '?'})")
print(f"  nibble:    {','.join(a)}\n  llama.cpp: {','.join(b)}")
PY
    fail=1
  fi
done
echo
echo "$n_same of ${#PROMPTS[@]} continuations equal llama.cpp's (nibble --numerics $NUMERICS, $N tokens)"
if [ -n "$RECORD" ]; then
  python3 - "$TMP/record.jsonl" "$RECORD" "$LLAMA_COMMIT" "$VERSION" "$(basename "$MODEL")" \
    "$(sha256sum "$MODEL" | cut -d' ' -f1)" "$N" <<'PY'
import json, sys
src, out, commit, version, model, sha, n = sys.argv[1:8]
prompts = [json.loads(l) for l in open(src)]
json.dump({"made_by": "tools/compare_llamacpp.sh --record", "llamacpp_commit": commit,
           "llama_cpp_python": version, "model": model, "model_sha256": sha, "n_tokens": int(n),
           "decoding": "argmax of llama.cpp's logits from the prompt ids (CPU, F16 KV cache, "
                       "flash attention auto, 2 threads, n_ctx 1024)",
           "prompts": prompts}, open(out, "w"), indent=1)
print(f"recorded {len(prompts)} prompts to {out}")
PY
fi
exit $fail
