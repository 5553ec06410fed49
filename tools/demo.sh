#!/usr/bin/env bash
# `make demo`: fetch the bundled model once, then ask it a question.
set -euo pipefail
nibble="${1:-build/bin/nibble}"
"$(dirname "$0")/fetch_model.sh"
echo "nibble run --chat -p \"What is the capital of France? Answer in one word.\" -n 24 --temp 0" >&2
"$nibble" run --chat -p "What is the capital of France? Answer in one word." -n 24 --temp 0
