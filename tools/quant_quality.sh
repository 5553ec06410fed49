#!/usr/bin/env bash
# The quality table of docs/quantization.md: the bundled GGUF model (dequantized exactly: the
# base) re-quantized to each format, scored on GSM8K questions as llama.cpp's perplexity tool
# scores (windows of CTX tokens, each from scratch, second half scored): perplexity, mean
# KL(base || quantized) per scored token, top-1 agreement with the base, bits per weight.
# CPU only. Prints the markdown table on stdout; progress and raw JSON go to $WORK.
#
#   tools/quant_quality.sh                      # defaults below
#   NIBBLE=build-qt/bin/nibble WINDOWS=40 OMP_NUM_THREADS=1 tools/quant_quality.sh
set -euo pipefail

NIBBLE=${NIBBLE:-build/bin/nibble}
MODEL=${MODEL:-$HOME/.cache/nibble/models/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${DATA:-/work/shared/data/gsm8k/test.jsonl}
CTX=${CTX:-512}          # tokens per window; the last CTX/2 - 1 of each are scored
WINDOWS=${WINDOWS:-16}   # windows evaluated: WINDOWS * CTX tokens of text (16: ~11 min, 1 thread)
WORK=${WORK:-/tmp/nibble_quant_quality}
# "int4:64" = --format int4 --group 64. SmolLM2-135M's hidden size 576 is not a multiple of
# 128, so int4 g128 can only quantize down_proj (in_features 1536); g64 covers every Linear.
FORMATS=${FORMATS:-"nf4 int4 int4:64 mxfp4 nvfp4 fp8"}

mkdir -p "$WORK"
log() { echo "[$(date +%T)] $*" >&2; }

# The text: every GSM8K test question, one per line, in file order (the answers are left out:
# they are mostly <<calculator>> annotations and digits, not running text).
TEXT=$WORK/gsm8k_questions.txt
python3 -c '
import json, sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
    for line in f:
        out.write(json.loads(line)["question"].replace("\n", " ").strip() + "\n")
' "$DATA" "$TEXT"
log "text: $(wc -l < "$TEXT") questions, $(wc -c < "$TEXT") bytes"

# The base as an f32 HuggingFace folder (exact dequantization of the GGUF), and each format
# quantized from it.
"$NIBBLE" quantize -m "$MODEL" --format f32 -o "$WORK/f32" > "$WORK/f32.quantize.txt"
log "exported the f32 base"
models=()
for spec in $FORMATS; do
  fmt=${spec%%:*}
  args=(--format "$fmt")
  name=$fmt
  if [[ $spec == *:* ]]; then args+=(--group "${spec#*:}"); name="${fmt}_g${spec#*:}"; fi
  "$NIBBLE" quantize -m "$WORK/f32" "${args[@]}" -o "$WORK/$name" > "$WORK/$name.quantize.txt"
  log "quantized $name: $(tail -1 "$WORK/$name.quantize.txt")"
  models+=(-m "$WORK/$name")
done

# Sanity: the f32 export computes the GGUF's logits (KL ~ 1e-10, agreement 1).
"$NIBBLE" eval -m "$WORK/f32" --kl-base "$MODEL" --text "$TEXT" --ctx "$CTX" --max-windows 2 > "$WORK/f32_check.jsonl"
log "f32 export vs GGUF (2 windows): $(cat "$WORK/f32_check.jsonl")"

# One pass of the base per window, shared by every format.
start=$(date +%s)
"$NIBBLE" eval "${models[@]}" --kl-base "$MODEL" --text "$TEXT" --ctx "$CTX" --max-windows "$WINDOWS" \
  --progress > "$WORK/eval.jsonl"
log "eval took $(( $(date +%s) - start )) s"

python3 - "$WORK" "$MODEL" $FORMATS <<'EOF'
import json, os, re, sys
work, model, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = [json.loads(l) for l in open(os.path.join(work, "eval.jsonl"))]
by_path = {r["model"]: r for r in rows}
first = rows[0]
print(f"{first['tokens']} tokens of text, {first['windows']} windows of {first['ctx']}, "
      f"{first['scored']} tokens scored\n")
print("| format | bits/weight (quantized matrices) | bits/weight (whole model) | perplexity | mean KL vs base | top-1 agreement |")
print("| --- | --- | --- | --- | --- | --- |")
print(f"| base: the GGUF (Q4_1 + Q8_0), exact | — | {first['base_bits_per_weight']:.2f} | "
      f"{first['base_perplexity']:.3f} ± {first['base_perplexity_err']:.3f} | 0 | 100 % |")
for spec in specs:
    fmt, _, g = spec.partition(":")
    name = f"{fmt}_g{g}" if g else fmt
    r = by_path[os.path.join(work, name)]
    q = open(os.path.join(work, name + ".quantize.txt")).read()
    m = re.search(r"bits per quantized weight ([0-9.]+)", q)
    label = {"nf4": "nf4 (b64, double quant)", "int4": f"int4 (g{g or 128})", "mxfp4": "mxfp4 (b32, E8M0)",
             "nvfp4": "nvfp4 (b16, E4M3 + fp32)", "fp8": "fp8 E4M3 (per row)"}.get(fmt, name)
    print(f"| {label} | {float(m.group(1)):.3f} | {r['bits_per_weight']:.2f} | "
          f"{r['perplexity']:.3f} ± {r['perplexity_err']:.3f} | {r['mean_kl']:.4f} ± {r['mean_kl_err']:.4f} | "
          f"{100 * r['top1_agreement']:.2f} ± {100 * r['top1_agreement_err']:.2f} % |")
EOF
