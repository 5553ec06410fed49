"""Anchors for nibble_gemv_bench, measured in the same session on the same GPU:
bitsandbytes NF4 (bnb.matmul_4bit, double-quantized, blocksize 64) and cuBLAS bf16 (torch x @ W.T)
for the 15 layer shapes and M in {1, 8, 32}.

Timed exactly as the C++ bench times nibble's kernels: CUDA events around a batch of calls that
rotate among weight copies totalling >= 400 MB (so L2 serves none of them), per-call time = batch
time / calls, median over batches, with the GPU kept busy while the batch is enqueued (so host
and Python overhead are not timed: this flatters the anchors, never nibble). Writes JSON (rows of {shape, M, bnb_us, cublas_us}) to argv[1].
If bitsandbytes cannot be imported or run, bnb_us is null and the reason is in "bnb_error".
"""
import json
import math
import sys

import torch

SHAPES = [  # name, N (out_features), K (in_features)
    ("llama70b.qkv", 8192 + 2 * 1024, 8192), ("llama70b.o", 8192, 8192),
    ("llama70b.gate_up", 2 * 28672, 8192), ("llama70b.down", 8192, 28672),
    ("qwen3-32b.qkv", 8192 + 2 * 1024, 5120), ("qwen3-32b.o", 5120, 8192),
    ("qwen3-32b.gate_up", 2 * 25600, 5120), ("qwen3-32b.down", 5120, 25600),
    ("gemma3-27b.qkv", 4096 + 2 * 2048, 5376), ("gemma3-27b.o", 5376, 4096),
    ("gemma3-27b.gate_up", 2 * 21504, 5376), ("gemma3-27b.down", 5376, 21504),
    ("llama8b.qkv", 4096 + 2 * 1024, 4096), ("llama8b.gate_up", 2 * 14336, 4096),
    ("llama8b.down", 4096, 14336),
]
MS = (1, 8, 32)
BATCHES = 25


def time_rotating(fn, n_items):
    """Median per-call microseconds of fn(i) over batches rotating i through n_items."""
    per_batch = max(8, n_items)
    for i in range(3):
        fn(i % n_items)
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times, r = [], 0
    for _ in range(BATCHES):
        # Keep the GPU busy while Python enqueues the batch (about 2000 cycles per us), so the
        # events time the kernels back to back and not Python's call overhead.
        torch.cuda._sleep(int(2000 * (500 + 80 * per_batch)))
        e0.record()
        for _ in range(per_batch):
            fn(r % n_items)
            r += 1
        e1.record()
        e1.synchronize()
        times.append(e0.elapsed_time(e1) * 1e3 / per_batch)
    times.sort()
    return times[len(times) // 2]


def main():
    out_path = sys.argv[1]
    dev = "cuda"
    torch.manual_seed(0)
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "note": "same run (bench/gemv_anchors.py, batch-of-rotated-calls timing)", "rows": []}
    try:
        import bitsandbytes as bnb
        import bitsandbytes.functional as F
        res["bnb"] = bnb.__version__
        bnb_error = None
    except Exception as e:  # noqa: BLE001 - report whatever stopped the import
        bnb, F, bnb_error = None, None, f"import failed: {e!r}"
    for name, N, K in SHAPES:
        row_base = {"shape": name, "N": N, "K": K}
        # cuBLAS bf16
        wbytes = N * K * 2
        copies = max(2, math.ceil(400e6 / wbytes))
        Ws = [torch.randn(N, K, device=dev, dtype=torch.bfloat16) * 0.02 for _ in range(copies)]
        cub = {}
        for M in MS:
            x = torch.randn(M, K, device=dev, dtype=torch.bfloat16)
            cub[M] = time_rotating(lambda i: x @ Ws[i].t(), copies)
        W0 = Ws[0]
        del Ws
        bnbt, rel = {}, {}
        if bnb is not None and bnb_error is None:
            try:
                qbytes = N * K // 2 + N * K // 64
                qcopies = max(2, math.ceil(400e6 / qbytes))
                Qs = [F.quantize_4bit(W0, blocksize=64, quant_type="nf4", compress_statistics=True)
                      for _ in range(qcopies)]
                for M in MS:
                    x = torch.randn(M, K, device=dev, dtype=torch.bfloat16)
                    q, st = Qs[0]
                    ref = x.float() @ F.dequantize_4bit(q, st).float().t()
                    got = bnb.matmul_4bit(x, q.t(), quant_state=st).float()
                    rel[M] = ((got - ref).norm() / ref.norm()).item()
                    bnbt[M] = time_rotating(lambda i: bnb.matmul_4bit(x, Qs[i][0].t(), quant_state=Qs[i][1]), qcopies)
                del Qs
            except Exception as e:  # noqa: BLE001
                bnb_error = f"run failed: {e!r}"
        del W0
        torch.cuda.empty_cache()
        for M in MS:
            row = dict(row_base, M=M, cublas_us=cub[M], bnb_us=bnbt.get(M), bnb_rel_err=rel.get(M))
            res["rows"].append(row)
            b = f"{bnbt[M]:8.1f}" if M in bnbt else "     n/a"
            print(f"anchor {name:19s} M={M:2d}  bnb {b} us  cublas-bf16 {cub[M]:8.1f} us", flush=True)
    res["bnb_error"] = bnb_error
    if bnb_error:
        print("bitsandbytes:", bnb_error, flush=True)
    with open(out_path, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
