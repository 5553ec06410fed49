#!/usr/bin/env python3
"""Goldens for nibble's quantized-weight formats (tests/unit/quant), made by the packages that
define them, never by nibble's own code.

    python3 tools/make_quant_goldens.py bnb  --out DIR [--device cuda]  # needs torch, transformers, bitsandbytes
    python3 tools/make_quant_goldens.py int4 --out DIR                  # needs torch, compressed-tensors
    python3 tools/make_quant_goldens.py fp   --out DIR                  # needs numpy, ml_dtypes

bnb (run on the GPU machine: bitsandbytes' CUDA kernels are what checkpoints people have were
made with; see docs/quantization.md):
  DIR/bnb_nf4_dq/, DIR/bnb_fp4/   transformers' save_pretrained of tests/data/models/llama3_classic
        loaded with BitsAndBytesConfig(load_in_4bit) (nf4 + double quant; fp4 without), plus
        golden.safetensors: tokens_<i> int32 [T], logits_<i> fp32 [T, vocab] computed by
        transformers in fp32 on bitsandbytes' own fp32-dequantized weights, and deq.<name> fp32
        [out, in] for two of those weights.
  DIR/bnb_kernels.safetensors     bitsandbytes' quantize_4bit / quantize_blockwise outputs on
        random and tie-breaking inputs, and torch.mean of fp32 vectors (the double-quant offset).
int4: GPTQ (auto-gptq's packing: qweight [k/8, n], qzeros with the v1 "zero - 1", g_idx, act
  order), AWQ (AutoAWQ's GEMM packing with its 0 2 4 6 1 3 5 7 nibble order) and
  compressed-tensors pack-quantized (its own pack_to_int32), each with the integer codes and the
  scales the packing started from: DIR/int4_packs.safetensors.
fp: MXFP4 / NVFP4 / FP8-E4M3 references computed with ml_dtypes' float4_e2m1fn, float8_e4m3fn
  and float8_e8m0fnu casts (the block scale rules written here from the OCP MX spec and NVIDIA's
  NVFP4 description): DIR/fp_formats.safetensors.
"""
import argparse
import copy
import json
import os
import shutil
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_MODEL = os.path.join(HERE, "..", "tests", "data", "models", "llama3_classic")
SEQ_LENS = [1, 9, 40]


def save_np(tensors, path):
    from safetensors.numpy import save_file
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, path)


# ----------------------------------------------------------------------------------------------
# bitsandbytes

def bnb_model_case(out, name, quant_type, double_quant, device):
    import torch
    import transformers
    import bitsandbytes as bnb
    from bitsandbytes.nn import Linear4bit

    cfg = transformers.BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type=quant_type, bnb_4bit_use_double_quant=double_quant,
        bnb_4bit_compute_dtype=torch.bfloat16)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        SRC_MODEL, quantization_config=cfg, dtype=torch.bfloat16, device_map=device)
    d = os.path.join(out, name)
    shutil.rmtree(d, ignore_errors=True)
    model.save_pretrained(d, safe_serialization=True)

    # bitsandbytes' own dequantization, in fp32 (quant_state.dtype would round to bf16).
    deq = {}
    for mname, mod in model.named_modules():
        if isinstance(mod, Linear4bit):
            qs = copy.copy(mod.weight.quant_state)
            qs.dtype = torch.float32
            w = bnb.functional.dequantize_4bit(mod.weight.data, qs).float().cpu()
            deq[mname + ".weight"] = w

    ref = transformers.AutoModelForCausalLM.from_pretrained(
        SRC_MODEL, dtype=torch.float32, attn_implementation="eager").eval()
    sd = ref.state_dict()
    with torch.no_grad():
        for k, w in deq.items():
            assert sd[k].shape == w.shape, (k, sd[k].shape, w.shape)
            sd[k].copy_(w)
    vocab = ref.config.vocab_size
    g = torch.Generator().manual_seed(7)
    tensors = {}
    worst = 0.0
    for i, n in enumerate(SEQ_LENS):
        ids = torch.randint(0, vocab, (1, n), generator=g)
        with torch.no_grad():
            logits = ref(input_ids=ids).logits[0].float()
            try:  # sanity only: bnb's own (bf16) forward should land near the fp32 reference
                q_logits = model(input_ids=ids.to(model.device)).logits[0].float().cpu()
                worst = max(worst, ((q_logits - logits).abs().max() / logits.abs().max()).item())
            except Exception as e:  # noqa: BLE001 (bnb's CPU forward has gaps; the goldens don't need it)
                worst = float("nan")
                print("  bnb forward failed:", e)
        tensors[f"tokens_{i}"] = ids[0].to(torch.int32).numpy()
        tensors[f"logits_{i}"] = logits.numpy()
    for k in ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight"]:
        tensors["deq." + k] = deq[k].numpy()
    save_np(tensors, os.path.join(d, "golden.safetensors"))
    print(f"{name}: {len(deq)} Linear4bit, bnb-forward vs fp32-dequant rel err {worst:.2e},",
          "files", sorted(os.listdir(d)))


def bnb_kernels(out, device):
    import torch
    import bitsandbytes as bnb
    F = bnb.functional
    rng = np.random.default_rng(11)
    t = {}
    # Random inputs: blocks straddle rows ([37, 100] = 3700 elements; last block partial).
    x = (rng.standard_normal((37, 100)) * 0.05).astype(np.float32)
    x[5, 7] = 0.9  # an outlier
    t["x"] = x
    xt = torch.from_numpy(x).to(device)
    for qt in ["nf4", "fp4"]:
        for bs in [32, 64, 128, 256, 512, 1024, 2048, 4096]:
            q, s = F.quantize_4bit(xt, blocksize=bs, quant_type=qt, compress_statistics=False)
            t[f"{qt}_b{bs}.packed"] = q.cpu().numpy().reshape(-1)
            t[f"{qt}_b{bs}.absmax"] = s.absmax.float().cpu().numpy()
        # bf16 input, as transformers quantizes a bf16 checkpoint.
        xb = xt.to(torch.bfloat16)
        q, s = F.quantize_4bit(xb, blocksize=64, quant_type=qt, compress_statistics=True)
        t[f"{qt}_bf16.x"] = xb.float().cpu().numpy()
        t[f"{qt}_bf16.packed"] = q.cpu().numpy().reshape(-1)
        t[f"{qt}_bf16.absmax_q"] = s.absmax.cpu().numpy()
        t[f"{qt}_bf16.nested_absmax"] = s.state2.absmax.float().cpu().numpy()
        t[f"{qt}_bf16.offset"] = np.array([s.offset.item()], dtype=np.float32)

    # Ties: one block of 64 with absmax exactly 1, every decision threshold and its neighbours.
    def tie_inputs(thresholds):
        vals = [1.0]
        for th in thresholds:
            f = np.float32(th)
            vals += [f, np.nextafter(f, np.float32(2)), np.nextafter(f, np.float32(-2))]
        vals += [0.0, -0.0]
        v = np.array(vals, dtype=np.float32)
        pad = (-len(v)) % 64
        return np.concatenate([v, np.zeros(pad, np.float32) + 0.01]).astype(np.float32)

    nf4 = F.get_4bit_type("nf4", device="cpu").numpy()
    nf4_mid = [(np.float32(nf4[i]) + np.float32(nf4[i + 1])) * np.float32(0.5) for i in range(15)]
    fp4_th = [0.29166667, 0.583333, 0.8333333, 0.4166667, 0.0859375, 0.20833333, 0.00260417]
    fp4_th = fp4_th + [-v for v in fp4_th]
    for qt, ths in [("nf4", nf4_mid), ("fp4", fp4_th)]:
        v = tie_inputs(ths)
        q, s = F.quantize_4bit(torch.from_numpy(v).to(device), blocksize=64, quant_type=qt,
                               compress_statistics=False)
        t[f"{qt}_ties.x"] = v
        t[f"{qt}_ties.packed"] = q.cpu().numpy().reshape(-1)
        t[f"{qt}_ties.absmax"] = s.absmax.float().cpu().numpy()
    # An all-zero block next to a normal one.
    z = np.zeros(128, np.float32)
    z[64:] = rng.standard_normal(64).astype(np.float32)
    for qt in ["nf4", "fp4"]:
        q, s = F.quantize_4bit(torch.from_numpy(z).to(device), blocksize=64, quant_type=qt,
                               compress_statistics=False)
        t[f"{qt}_zero.x"] = z
        t[f"{qt}_zero.packed"] = q.cpu().numpy().reshape(-1)
        t[f"{qt}_zero.absmax"] = s.absmax.float().cpu().numpy()

    # 8-bit dynamic blockwise (the double-quant step), random and on the map's midpoints.
    code = F.create_dynamic_map(signed=True).numpy()
    t["dynamic_map"] = code
    y = (rng.standard_normal(5000) * 0.01).astype(np.float32)
    q, s = F.quantize_blockwise(torch.from_numpy(y).to(device), blocksize=256)
    t["dyn.x"] = y
    t["dyn.q"] = q.cpu().numpy()
    t["dyn.absmax"] = s.absmax.float().cpu().numpy()
    mids = (code[:-1] + code[1:]) * np.float32(0.5)
    yt = np.concatenate([[1.0], mids, np.nextafter(mids, np.float32(2)),
                         np.nextafter(mids, np.float32(-2))]).astype(np.float32)
    yt = np.concatenate([yt, np.full((-len(yt)) % 256, 0.001, np.float32)]).astype(np.float32)
    for b in range(0, len(yt), 256):
        yt[b] = 1.0  # absmax exactly 1 in every block: the scaled values are the inputs
    q, s = F.quantize_blockwise(torch.from_numpy(yt).to(device), blocksize=256)
    t["dyn_ties.x"] = yt
    t["dyn_ties.q"] = q.cpu().numpy()

    # torch.mean of fp32 vectors: the double-quant offset depends on its summation order.
    for n in [1, 2, 3, 5, 7, 16, 31, 64, 100, 144, 300, 313, 375, 1000, 1024, 3001, 4096, 5000,
              10007, 65537]:
        a = rng.uniform(0.01, 0.3, n).astype(np.float32)
        t[f"mean_{n}.x"] = a
        t[f"mean_{n}.mean"] = np.array([torch.from_numpy(a).to(device).mean().item()], np.float32)
    save_np(t, os.path.join(out, "bnb_kernels.safetensors"))
    print("bnb_kernels:", len(t), "tensors")


def run_bnb(args):
    import torch
    import bitsandbytes
    import transformers
    print("torch", torch.__version__, "transformers", transformers.__version__, "bitsandbytes",
          bitsandbytes.__version__, "device", args.device)
    os.makedirs(args.out, exist_ok=True)
    steps = [lambda: bnb_kernels(args.out, args.device),
             lambda: bnb_model_case(args.out, "bnb_nf4_dq", "nf4", True, args.device),
             lambda: bnb_model_case(args.out, "bnb_fp4", "fp4", False, args.device)]
    failed = 0
    for s in steps:
        try:
            s()
        except Exception as e:  # keep going: one device run has to bring back everything it can
            import traceback
            traceback.print_exc()
            failed += 1
    return failed


# ----------------------------------------------------------------------------------------------
# INT4: GPTQ, AWQ, compressed-tensors

def load_module_from_file(modname, path):
    import importlib.util
    spec = importlib.util.spec_from_file_location(modname, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def int4_case(rng, n, k, gs, act_order, sym):
    """Integer codes, zero points (1..15: GPTQ v1 stores zero - 1, and a zero of 0 would wrap to
    0xFFFFFFFF and spill into the neighbouring nibbles) and fp16 scales to pack."""
    G = k // gs
    q = rng.integers(0, 16, (n, k)).astype(np.int64)
    z = np.full((n, G), 8, np.int64) if sym else rng.integers(1, 16, (n, G)).astype(np.int64)
    s = (rng.uniform(0.001, 0.02, (n, G))).astype(np.float16)
    g_idx = (np.arange(k) // gs).astype(np.int32)
    if act_order:
        g_idx = rng.permutation(g_idx).astype(np.int32)
    return q, z, s, g_idx


def run_int4(args):
    """Packs made by the packages' own code: auto-gptq's QuantLinear.pack (qlinear_cuda.py),
    AutoAWQ's WQLinear_GEMM.from_linear and packing_utils.dequantize_gemm, compressed-tensors'
    pack_to_int32 / unpack_from_int32 / dequantize. --refs DIR holds the unpacked auto-gptq wheel
    (DIR/ag) and AutoAWQ sdist (DIR/aw/autoawq-0.2.9); compressed-tensors is imported."""
    import types
    import torch
    gptq = load_module_from_file("qlinear_cuda", os.path.join(
        args.refs, "ag", "auto_gptq", "nn_modules", "qlinear", "qlinear_cuda.py"))
    awq_root = os.path.join(args.refs, "aw", "autoawq-0.2.9")
    for pkg in ["awq", "awq.utils", "awq.modules", "awq.modules.linear"]:  # skip heavy __init__s
        m = types.ModuleType(pkg)
        m.__path__ = [os.path.join(awq_root, *pkg.split("."))]
        sys.modules[pkg] = m
    from awq.modules.linear.gemm import WQLinear_GEMM
    from awq.utils.packing_utils import dequantize_gemm
    from compressed_tensors.compressors.pack_quantized.helpers import pack_to_int32, unpack_from_int32
    from compressed_tensors.quantization import QuantizationArgs
    from compressed_tensors.quantization.lifecycle.forward import dequantize

    rng = np.random.default_rng(5)
    t = {}
    n, k = 64, 256
    cases = [("g128", 128, False, False), ("g32_asym", 32, False, False), ("g64_act", 64, True, False),
             ("ch_sym", k, False, True)]
    for name, gs, act, sym in cases:
        q, z, s, g_idx = int4_case(rng, n, k, gs, act, sym)
        G = k // gs
        sf = s.astype(np.float32)
        w = (q - z[:, g_idx]).astype(np.float32) * sf[:, g_idx]  # exact in fp32
        t[f"{name}.q"] = q.astype(np.uint8)
        t[f"{name}.z"] = z.astype(np.uint8)
        t[f"{name}.s"] = sf
        t[f"{name}.g_idx"] = g_idx
        t[f"{name}.w"] = w
        lin = torch.nn.Linear(k, n, bias=False)
        lin.weight.data = torch.from_numpy(w)
        # GPTQ (v1 on disk).
        ql = gptq.QuantLinear(4, -1 if gs == k else gs, k, n, False)
        ql.pack(lin, torch.from_numpy(sf), torch.from_numpy(z.astype(np.float32)),
                torch.from_numpy(g_idx.astype(np.int64)))
        t[f"{name}.gptq.qweight"] = ql.qweight.numpy()
        t[f"{name}.gptq.qzeros"] = ql.qzeros.numpy()
        t[f"{name}.gptq.scales"] = ql.scales.to(torch.float16).numpy()
        t[f"{name}.gptq.g_idx"] = g_idx
        if not act:
            # AWQ: scales/zeros as [G, n]; its packer rounds (w + z*s) / s with fp16 scales.
            aw = WQLinear_GEMM.from_linear(lin, 4, gs, scales=torch.from_numpy(sf.T.copy()).half(),
                                           zeros=torch.from_numpy(z.T.copy()))
            t[f"{name}.awq.qweight"] = aw.qweight.numpy()
            t[f"{name}.awq.qzeros"] = aw.qzeros.numpy()
            t[f"{name}.awq.scales"] = aw.scales.numpy()
            t[f"{name}.awq.ref"] = dequantize_gemm(aw.qweight, aw.qzeros, aw.scales, 4, gs).T.float().numpy()
        # compressed-tensors pack-quantized: signed codes, packed along k; zero points along n.
        qs = torch.from_numpy((q - 8).astype(np.int8))
        zs = torch.from_numpy((z - 8).astype(np.int8))
        t[f"{name}.ct.weight_packed"] = pack_to_int32(qs, 4).numpy()
        t[f"{name}.ct.weight_zero_point"] = pack_to_int32(zs, 4, packed_dim=0).numpy()
        t[f"{name}.ct.weight_scale"] = torch.from_numpy(sf).to(torch.bfloat16).view(torch.int16).numpy()
        un = unpack_from_int32(torch.from_numpy(t[f"{name}.ct.weight_packed"]), 4, torch.Size([n, k]))
        assert torch.equal(un, qs)
        qa = QuantizationArgs(num_bits=4, type="int", symmetric=sym, strategy="group", group_size=gs)
        scale_bf = torch.from_numpy(sf).to(torch.bfloat16)
        ref = dequantize(un, scale_bf, None if sym else zs, qa)
        t[f"{name}.ct.ref"] = ref.float().numpy()  # bf16 values, widened
    save_np(t, os.path.join(args.out, "int4_packs.safetensors"))
    print("int4_packs:", len(t), "tensors")
    return 0


# ----------------------------------------------------------------------------------------------
# MXFP4 / NVFP4 / FP8

def run_fp(args):
    """Element conversions by ml_dtypes (float4_e2m1fn, float8_e4m3fn, float8_e8m0fnu casts round
    to nearest even); the block-scale rules written here from the OCP MX v1.0 spec (MXFP4) and
    NVIDIA's NVFP4 description. Inputs are clipped to the element range before each cast, which
    is the saturation the formats ask for (ml_dtypes itself overflows to NaN for e4m3)."""
    import ml_dtypes as mld
    rng = np.random.default_rng(3)
    t = {}
    rows, cols = 24, 128
    w = (rng.standard_normal((rows, cols)) * 0.05).astype(np.float32)
    w[3, 5] = 1.7           # outliers
    w[7, 40:72] = 0.0       # an all-zero MX block and two NVFP4 blocks
    w[9, 0] = 3.0e-39       # a subnormal fp32
    w[11, :] *= 1e-6        # a row of tiny values
    t["w"] = w

    def e2m1(v):
        return np.clip(v, -6, 6).astype(mld.float4_e2m1fn)

    # MXFP4: X = 2^(floor(log2(amax)) - 2), E8M0 code = that exponent + 127.
    blocks = w.reshape(rows, cols // 32, 32)
    amax = np.abs(blocks).max(-1)
    e = np.where(amax > 0, np.floor(np.log2(np.where(amax > 0, amax, 1).astype(np.float64))) - 2, -127)
    e = np.clip(e, -127, 127).astype(np.int32)
    scale8 = np.exp2(e.astype(np.float64)).astype(mld.float8_e8m0fnu)
    assert np.array_equal(scale8.view(np.uint8), (e + 127).astype(np.uint8))
    x = (blocks.astype(np.float64) / np.exp2(e[..., None])).astype(np.float32)
    codes = e2m1(x)
    t["mx.scales"] = (e + 127).astype(np.uint8)
    t["mx.codes"] = codes.view(np.uint8).reshape(rows, cols) & 0xF
    t["mx.deq"] = (codes.astype(np.float32) * np.exp2(e[..., None]).astype(np.float32)).reshape(rows, cols)

    # NVFP4: global = amax / (448 * 6) (a multiplier); block scale e4m3(amax_b / 6 / global).
    g = np.float32(np.abs(w).max() / np.float32(448 * 6))
    nb = w.reshape(rows, cols // 16, 16)
    bs = (np.abs(nb).max(-1) / np.float32(6) / g).astype(np.float32)
    s8 = np.clip(bs, 0, 448).astype(mld.float8_e4m3fn)
    step = (s8.astype(np.float32) * g).astype(np.float32)
    safe = np.where(step > 0, step, 1).astype(np.float32)
    xc = np.where(step[..., None] > 0, nb / safe[..., None], 0).astype(np.float32)
    c4 = e2m1(xc)
    t["nv.global"] = np.array([g], np.float32)
    t["nv.scales"] = s8.view(np.uint8)
    t["nv.codes"] = c4.view(np.uint8).reshape(rows, cols) & 0xF
    t["nv.deq"] = ((c4.astype(np.float32) * s8.astype(np.float32)[..., None]) * g).astype(np.float32).reshape(rows, cols)

    # FP8 E4M3 per channel: scale = amax_row / 448.
    ra = np.abs(w).max(1)
    sc = np.where(ra > 0, ra / np.float32(448), 1).astype(np.float32)
    c8 = np.clip(w / sc[:, None], -448, 448).astype(mld.float8_e4m3fn)
    t["fp8.scales"] = sc
    t["fp8.codes"] = c8.view(np.uint8)
    t["fp8.deq"] = (c8.astype(np.float32) * sc[:, None]).astype(np.float32)

    # Scalar conversions on every interesting fp32 value: exhaustive decode tables and an encode
    # sweep over ties (midpoints between neighbours) and saturation.
    all8 = np.arange(256, dtype=np.uint8)
    t["e4m3.decode"] = all8.view(mld.float8_e4m3fn).astype(np.float32)
    vals = t["e4m3.decode"][np.isfinite(t["e4m3.decode"])]
    vals = np.unique(vals[vals >= 0]).astype(np.float64)
    mids = ((vals[:-1] + vals[1:]) / 2).astype(np.float32)
    sweep = np.concatenate([mids, np.nextafter(mids, np.float32(1e9)), np.nextafter(mids, np.float32(0)),
                            np.array([447, 448, 449, 463.9, 464, 465, 1e6, 1e-12, 2.0 ** -10, 3 * 2.0 ** -11],
                                     np.float32)]).astype(np.float32)
    sweep = np.concatenate([sweep, -sweep]).astype(np.float32)
    t["e4m3.x"] = sweep
    t["e4m3.enc"] = np.clip(sweep, -448, 448).astype(mld.float8_e4m3fn).view(np.uint8)
    v4 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6], np.float64)
    m4 = ((v4[:-1] + v4[1:]) / 2).astype(np.float32)
    sw4 = np.concatenate([m4, np.nextafter(m4, np.float32(9)), np.nextafter(m4, np.float32(0)),
                          np.array([5.9, 6, 6.5, 7, 100, 0.1], np.float32)]).astype(np.float32)
    sw4 = np.concatenate([sw4, -sw4]).astype(np.float32)
    t["e2m1.x"] = sw4
    t["e2m1.enc"] = e2m1(sw4).view(np.uint8) & 0xF
    save_np(t, os.path.join(args.out, "fp_formats.safetensors"))
    print("fp_formats:", len(t), "tensors")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["bnb", "int4", "fp"])
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "data", "quant"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--refs", default="/tmp/refs", help="int4: unpacked auto-gptq / AutoAWQ sources")
    args = ap.parse_args()
    sys.path.insert(0, HERE)
    return {"bnb": run_bnb, "int4": run_int4, "fp": run_fp}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
