#!/usr/bin/env python3
"""Encoding speed: nibble's C++ tokenizer vs HuggingFace `tokenizers`, one core each.

Text: the GSM8K test questions (../shared/data/gsm8k/test.jsonl), one per line. Two modes:
  document  - all questions joined with "\\n" as one encode call
  per_line  - one encode call per question (the chat-serving shape: many short prompts)
nibble runs under `taskset -c 0` through `nibble tokenize --repeat N` (timing excludes loading);
HF runs in this process pinned to the same core with RAYON_NUM_THREADS=1 and
TOKENIZERS_PARALLELISM=false. Both must give identical ids, or the run fails.

Usage (from the repository root, after building the `nibble` target):
  python3 bench/tokenizer_bench.py --nibble build-tok/bin/nibble [--tokenizer llama3] [--repeat 7]
Writes bench/results/tokenizer_<date>.json.
"""
import os

os.environ["RAYON_NUM_THREADS"] = "1"          # must be set before tokenizers is imported
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse
import datetime
import json
import lzma
import platform
import statistics
import subprocess
import tempfile
import time

import tokenizers


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def time_hf(tok, text, lines, repeat):
    out = {}
    for mode in ["document", "per_line"]:
        secs = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            if mode == "document":
                n = len(tok.encode(text, add_special_tokens=False).ids)
            else:
                n = sum(len(tok.encode(l, add_special_tokens=False).ids) for l in lines)
            secs.append(time.perf_counter() - t0)
        out[mode] = {"median_s": statistics.median(secs), "min_s": min(secs), "tokens": n}
    return out


def time_nibble(binary, tok_path, text, repeat, core):
    out = {}
    ids = None
    for mode in ["document", "per_line"]:
        cmd = ["taskset", "-c", str(core), binary, "tokenize", "-m", tok_path, "--repeat", str(repeat)]
        if mode == "per_line":
            cmd.append("--per-line")
        r = subprocess.run(cmd, input=text.encode(), capture_output=True, check=True)
        timing = json.loads(r.stderr.decode().strip().splitlines()[-1])
        out[mode] = {"median_s": timing["median_s"], "min_s": timing["min_s"], "tokens": timing["tokens"]}
        if mode == "document":
            ids = json.loads(r.stdout)
    return out, ids


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--nibble", default=os.path.join(here, "..", "build-tok", "bin", "nibble"))
    ap.add_argument("--shared", default=os.path.join(here, "..", "..", "shared"))
    ap.add_argument("--tokenizer", default="llama3")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--core", type=int, default=0)
    args = ap.parse_args()

    os.sched_setaffinity(0, {args.core})
    with open(os.path.join(args.shared, "data", "gsm8k", "test.jsonl"), encoding="utf-8") as f:
        lines = [json.loads(l)["question"].replace("\n", " ") for l in f]
    text = "\n".join(lines)
    with lzma.open(os.path.join(args.shared, "tokenizers", args.tokenizer, "tokenizer.json.xz"), "rt",
                   encoding="utf-8") as f:
        tok_json = f.read()

    with tempfile.TemporaryDirectory() as tmp:
        tok_path = os.path.join(tmp, "tokenizer.json")
        with open(tok_path, "w", encoding="utf-8") as f:
            f.write(tok_json)
        hf = tokenizers.Tokenizer.from_file(tok_path)
        hf_res = time_hf(hf, text, lines, args.repeat)
        nb_res, nb_ids = time_nibble(args.nibble, tok_path, text, args.repeat, args.core)
    hf_ids = hf.encode(text, add_special_tokens=False).ids
    if nb_ids != hf_ids:
        raise SystemExit("ids differ between nibble and HF: the benchmark is void")

    n_bytes = len(text.encode("utf-8"))
    result = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "cpu": cpu_name(),
              "tokenizer": args.tokenizer, "text": "GSM8K test questions", "bytes": n_bytes,
              "lines": len(lines), "tokens": len(hf_ids), "repeat": args.repeat,
              "hf_tokenizers_version": tokenizers.__version__, "threads": 1,
              # The machine may be shared: a high load average makes both sides slower and noisier.
              "load_avg_1min": os.getloadavg()[0], "modes": {}}
    for mode in ["document", "per_line"]:
        h, n = hf_res[mode], nb_res[mode]
        result["modes"][mode] = {
            "hf_s": h["median_s"], "nibble_s": n["median_s"],
            "hf_mb_per_s": n_bytes / h["median_s"] / 1e6, "nibble_mb_per_s": n_bytes / n["median_s"] / 1e6,
            "hf_tokens_per_s": h["tokens"] / h["median_s"], "nibble_tokens_per_s": n["tokens"] / n["median_s"],
            "speedup_vs_hf": h["median_s"] / n["median_s"]}
        r = result["modes"][mode]
        print(f"{mode:9s} nibble {r['nibble_s']*1e3:8.2f} ms ({r['nibble_mb_per_s']:6.2f} MB/s)   "
              f"HF {r['hf_s']*1e3:8.2f} ms ({r['hf_mb_per_s']:6.2f} MB/s)   nibble/HF speed {r['speedup_vs_hf']:.2f}x")
    os.makedirs(os.path.join(here, "results"), exist_ok=True)
    out = os.path.join(here, "results", f"tokenizer_{datetime.date.today().isoformat()}.json")
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", out)


if __name__ == "__main__":
    main()
