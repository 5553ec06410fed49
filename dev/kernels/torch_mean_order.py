"""Records torch.mean of float32 vectors on the GPU (what bitsandbytes uses for the double-quant
offset) so that nibble's CPU can be checked against the exact reduction order. Run on the GPU
machine: python3 dev/kernels/torch_mean_order.py OUT.npz [SIZES...]"""
import sys
import numpy as np
import torch

sizes = [int(a) for a in sys.argv[2:]] or [48, 144, 300, 1000, 4096, 10000, 65536, 262144, 917504]
g = torch.Generator().manual_seed(7)
out = {}
for n in sizes:
    x = (torch.rand(n, generator=g) * 0.2 + 0.01).float()  # positive, like absmax values
    out[f"x_{n}"] = x.numpy()
    out[f"mean_{n}"] = np.array([x.cuda().mean().item()], np.float32)
np.savez(sys.argv[1], **out)
print(torch.__version__, torch.cuda.get_device_name(), {n: float(out[f"mean_{n}"][0]) for n in sizes})
