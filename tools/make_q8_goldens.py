#!/usr/bin/env python3
"""Goldens for the llama.cpp numerics mode's Q8 activation quantizers and integer block dots
(src/ops/cpu/q8_dot.cpp), computed here independently in numpy and exact rational arithmetic.

    pip install gguf numpy && python3 tools/make_q8_goldens.py    # writes tests/data/gguf/q8_dot.json

Made with gguf 2.4.6, numpy 2.x; deterministic.

What llama.cpp's x86 CPU backend does (ggml/src/ggml-cpu/arch/x86/quants.c, commit 0c1e57098bba),
restated from reading it:
  quantize_row_q8_0 / q8_1 (AVX2 path, taken on every AVX2 machine): per 32 values
    amax = max|x|, d = amax / 127 (f32), id = 127 / amax (f32, 0 if amax == 0),
    q = round-half-even(x * id) (f32 product), d stored as f16; Q8_1 also s = f16(d * sum(q))
    with the unrounded f32 d.
  gguf-py's Q8_0 quantizer is ggml's *reference* (scalar) one instead: id = 1 / d and
  round-half-away-from-zero. The two agree on d always and on q except at a few rounding
  boundaries; this script checks that (as a sanity check of the numpy version) and records
  the AVX2 blocks.
  vec_dot_{q4_1,q5_1}_q8_1, vec_dot_{q5_0,q8_0}_q8_0 (AVX2): 8 f32 lanes; per block, lane l
    gets the exact integer sum over elements 4l..4l+3 of wq*aq, acc[l] = fma(dw*da, isum, acc[l])
    (dw*da one f32 product); the _1 types also summs = fma(m, s, summs) per block (as g++
    compiles it); result = ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)) [+ summs], all f32.
The weight blocks are gguf-py's own quantization of random rows (real layouts).

Output: {"quantize": [{"type", "x": [f32 bits], "blocks": hex}], "dot": [{"type", "n",
"w": hex, "a": hex, "expected": f32 bits}]}.
"""
import json
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as T

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "gguf" / "q8_dot.json"
rng = np.random.default_rng(20260121)
f32 = np.float32


def quantize_avx2(x, with_sum):
    """x: float32 [k] -> bytes of Q8_0 (34 B/block) or Q8_1 (36 B/block) blocks."""
    out = bytearray()
    for b in x.reshape(-1, 32):
        amax = np.max(np.abs(b)).astype(f32)
        d = f32(amax / f32(127))
        idv = f32(f32(127) / amax) if amax != 0 else f32(0)
        q = np.clip(np.rint(b * idv), -128, 127).astype(np.int32)  # f32 product, half-even
        out += np.float16(d).tobytes()
        if with_sum:
            out += np.float16(f32(d * f32(int(q.sum())))).tobytes()
        out += q.astype(np.int8).tobytes()
    return bytes(out)


def round_f32(fr):
    """Fraction -> the nearest float32 (ties to even), exactly."""
    c = np.float32(float(fr))  # within one f32 ulp; fix up below
    best = None
    for cand in (np.nextafter(c, f32(-np.inf)), c, np.nextafter(c, f32(np.inf))):
        err = abs(Fraction(float(cand)) - fr)
        key = (err, int(cand.view(np.uint32)) & 1)
        if best is None or key < best[0]:
            best = (key, cand)
    return f32(best[1])


def fma(a, b, c):
    return round_f32(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)))


def unpack(qtype, blk):
    """Weight block -> (ints[32], d, m) as ggml's kernel sees them."""
    h = lambda o: f32(np.frombuffer(blk[o:o + 2], np.float16)[0])
    if qtype == T.Q8_0:
        return np.frombuffer(blk[2:34], np.int8).astype(np.int64), h(0), f32(0)
    if qtype == T.Q4_1:
        qs = np.frombuffer(blk[4:20], np.uint8).astype(np.int64)
        return np.concatenate([qs & 15, qs >> 4]), h(0), h(2)
    qh_off, qs_off, has_m = (2, 6, False) if qtype == T.Q5_0 else (4, 8, True)
    qh = int.from_bytes(blk[qh_off:qh_off + 4], "little")
    qs = np.frombuffer(blk[qs_off:qs_off + 16], np.uint8).astype(np.int64)
    hb = np.array([(qh >> j) & 1 for j in range(32)], np.int64)
    v = np.concatenate([qs & 15, qs >> 4]) | (hb << 4)
    return (v, h(0), h(2)) if has_m else (v - 16, h(0), f32(0))


def dot_golden(qtype, w, a):
    wsize = gguf.GGML_QUANT_SIZES[qtype][1]
    has_m = qtype in (T.Q4_1, T.Q5_1)
    asize = 36 if has_m else 34
    acc = [f32(0)] * 8
    summs = f32(0)
    for ib in range(len(w) // wsize):
        wq, dw, m = unpack(qtype, w[ib * wsize:(ib + 1) * wsize])
        ab = a[ib * asize:(ib + 1) * asize]
        da = f32(np.frombuffer(ab[0:2], np.float16)[0])
        aq = np.frombuffer(ab[asize - 32:], np.int8).astype(np.int64)
        if has_m:
            summs = fma(m, f32(np.frombuffer(ab[2:4], np.float16)[0]), summs)
        dxy = f32(dw * da)
        for lane in range(8):
            isum = int((wq[4 * lane:4 * lane + 4] * aq[4 * lane:4 * lane + 4]).sum())
            acc[lane] = fma(dxy, f32(isum), acc[lane])
    r = [f32(acc[i + 4] + acc[i]) for i in range(4)]
    res = f32(f32(r[0] + r[2]) + f32(r[1] + r[3]))
    return f32(res + summs) if has_m else res


def bits(x):
    return [int(v) for v in np.asarray(x, f32).view(np.uint32)]


def activations(k):
    x = (rng.standard_normal(k) * np.exp2(rng.integers(-6, 6, k // 32).repeat(32))).astype(f32)
    return x


def main():
    quant = []
    # Random rows, a zero block, and a block whose scaled values land on exact .5 ties.
    rows = [activations(256) for _ in range(6)]
    special = activations(64)
    special[:32] = 0
    # amax 127 makes id exactly 1, so x*id = k + 0.5 exactly: a tie, rounded to even here
    # (gguf-py's reference rounds it away from zero).
    special[32:64] = (np.arange(32, dtype=f32) - 15.5) * f32(3)
    special[32] = f32(127)
    rows.append(special)
    n_blocks = n_q_diff = 0
    for x in rows:
        for with_sum in (False, True):
            blocks = quantize_avx2(x, with_sum)
            quant.append({"type": "Q8_1" if with_sum else "Q8_0", "x": bits(x), "blocks": blocks.hex()})
        ours = np.frombuffer(quantize_avx2(x, False), np.uint8).reshape(-1, 34)
        ref = gguf.quants.quantize(x.reshape(1, -1), T.Q8_0).reshape(-1, 34)
        assert (ours[:, :2] == ref[:, :2]).all(), "d differs from gguf-py's"
        dq = ours[:, 2:].view(np.int8).astype(int) - ref[:, 2:].view(np.int8).astype(int)
        assert np.abs(dq).max() <= 1
        n_blocks += len(ours)
        n_q_diff += int((dq != 0).sum())
    print(f"Q8_0: d equal to gguf-py's reference quantizer in all {n_blocks} blocks; "
          f"{n_q_diff} of {n_blocks * 32} values differ by 1 (AVX2 127/amax and half-even vs 1/d and half-away)")

    dots = []
    for qtype in (T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0):
        for n in (32, 256, 576, 1536):
            w = rng.standard_normal(n).astype(f32) * f32(0.05)
            wb = gguf.quants.quantize(w.reshape(1, -1), qtype).tobytes()
            a = activations(n)
            ab = quantize_avx2(a, qtype in (T.Q4_1, T.Q5_1))
            dots.append({"type": qtype.name, "n": n, "w": wb.hex(), "a": ab.hex(),
                         "expected": bits([dot_golden(qtype, wb, ab)])[0]})
    OUT.write_text(json.dumps({"made_by": "tools/make_q8_goldens.py", "gguf": gguf.__version__ if hasattr(gguf, "__version__") else "2.4.6",
                               "quantize": quant, "dot": dots}, indent=0))
    print(f"wrote {OUT} ({len(quant)} quantized rows, {len(dots)} dots)")


if __name__ == "__main__":
    main()
