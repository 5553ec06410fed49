#!/usr/bin/env python3
"""Goldens for nibble's GGUF reader and ggml dequantizers, made with gguf-py (llama.cpp's own
Python package), which nobody here wrote.

Re-run (CPU only, a few seconds; output is deterministic for a given gguf version):

    python3 -m venv /tmp/gguf-venv && /tmp/gguf-venv/bin/pip install gguf numpy
    /tmp/gguf-venv/bin/python tools/make_gguf_goldens.py            # writes tests/data/gguf/

Made with gguf 0.19.0, numpy 2.x.

Writes:
  dequant_<type>.bin   random blocks and gguf.quants.dequantize's floats, one file per type:
                       "NBDQ" u32 ggml_type u32 n_blocks u32 n_elements, raw block bytes,
                       n_elements float32 (all little-endian)
  ggml_types.json      gguf-py's type table: name -> [id, block size, bytes per block]
  *.gguf + *.json      small GGUF files written by gguf.GGUFWriter (v3; one patched to v2) and
                       what they hold: metadata (type, value; floats also as exact bits),
                       tensor infos, raw tensor bytes as hex and, where gguf-py can dequantize
                       them, the expected float32 bits.
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as T
from gguf import GGUFValueType as V

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "gguf"
rng = np.random.default_rng(20240611)

# Byte offsets of the f16 scale fields in each block (the rest of a block is random bits).
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0], T.IQ4_NL: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
    T.IQ4_XS: [0],
    T.MXFP4: [],  # the scale is an E8M0 byte: every value 0..255 is valid, left random
}
PLAIN = {T.F32: np.float32, T.F16: np.float16, T.BF16: None, T.F64: np.float64, T.I8: np.int8,
         T.I16: np.int16, T.I32: np.int32, T.I64: np.int64}


def random_f16_scales(n):
    """Finite f16 of moderate range, both signs, plus some zeros, subnormals and extremes."""
    mag = rng.uniform(0.5, 2.0, n) * np.exp2(rng.integers(-14, 5, n).astype(np.float64))
    v = (mag * rng.choice([-1.0, 1.0], n)).astype(np.float16)
    special = np.array([0.0, -0.0, 6e-8, -3e-6, 65504.0, -1.0], dtype=np.float16)
    pick = rng.random(n) < 0.1
    v[pick] = rng.choice(special, int(pick.sum()))
    return v


def random_blocks(qtype, n_blocks):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, (n_blocks, size), dtype=np.uint8)
    for off in F16_FIELDS[qtype]:
        raw[:, off:off + 2] = random_f16_scales(n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return raw


def write_dequant(qtype, raw, floats):
    floats = np.ascontiguousarray(floats, dtype=np.float32).reshape(-1)
    name = f"dequant_{qtype.name.lower()}.bin"
    with open(OUT / name, "wb") as f:
        f.write(b"NBDQ" + struct.pack("<III", int(qtype), raw.shape[0], floats.size))
        f.write(raw.tobytes())
        f.write(floats.tobytes())
    return name


def make_dequant_goldens():
    files = []
    for qtype in F16_FIELDS:
        block = gguf.GGML_QUANT_SIZES[qtype][0]
        n_blocks = 64 if block == 32 else 16
        raw = random_blocks(qtype, n_blocks)
        with np.errstate(over="ignore", invalid="ignore"):  # MXFP4 e=255 times 12 overflows
            floats = gguf.quants.dequantize(raw, qtype)
        files.append(write_dequant(qtype, raw, floats))
    for qtype, np_type in PLAIN.items():
        n = 512
        if qtype in (T.F32, T.F16, T.BF16):
            width = 4 if qtype == T.F32 else 2
            raw = rng.integers(0, 256, (n, width), dtype=np.uint8)  # any bits, NaN/Inf included
            with np.errstate(invalid="ignore"):
                floats = gguf.quants.dequantize(raw.reshape(-1), qtype)
        else:
            # gguf-py has no dequantizer for these: numpy's rounding cast is the reference.
            if np_type == np.float64:
                vals = rng.standard_normal(n) * np.exp2(rng.integers(-60, 60, n))
            else:
                info = np.iinfo(np_type)
                vals = rng.integers(info.min, info.max, n, dtype=np_type, endpoint=True)
            vals = vals.astype(np_type)
            raw = vals.view(np.uint8).reshape(n, -1)
            floats = vals.astype(np.float32)
        files.append(write_dequant(qtype, raw, floats))
    return files


# ---- GGUF files ---------------------------------------------------------------------------

def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def f64_bits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def expect_value(vtype, value, sub_type=None):
    """JSON form of a metadata value, as the C++ test expects it."""
    if vtype == V.ARRAY:
        elem = sub_type
        if elem is None:
            elem = V.get_type(value[0])
        return {"type": "array", "elem_type": elem.name.lower(),
                "items": [expect_value(elem, v) for v in value]}
    out = {"type": vtype.name.lower()}
    if vtype == V.FLOAT32:
        out["bits"] = f32_bits(value)
        out["value"] = float(np.float32(value))
    elif vtype == V.FLOAT64:
        out["bits"] = f64_bits(value)
        out["value"] = value
    elif vtype == V.STRING:
        out["value"] = value
    elif vtype == V.BOOL:
        out["value"] = bool(value)
    else:
        out["value"] = int(value)
    return out


def tensor_record(name, qtype, shape, raw_bytes, floats):
    rec = {"name": name, "type": qtype.name, "shape": list(shape), "ne": list(reversed(shape)),
           "nbytes": len(raw_bytes), "hex": raw_bytes.hex()}
    if floats is not None:
        rec["f32_bits"] = [int(b) for b in np.asarray(floats, np.float32).reshape(-1).view(np.uint32)]
    return rec


def add_quant_tensor(w, records, name, qtype, shape):
    """Random valid blocks for a quantized tensor of row-major `shape`."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    rows = int(np.prod(shape[:-1]))
    n_blocks = rows * shape[-1] // block
    raw = random_blocks(qtype, n_blocks).reshape(*shape[:-1], shape[-1] // block * size)
    w.add_tensor(name, raw, raw_dtype=qtype)
    floats = gguf.quants.dequantize(raw, qtype)
    records.append(tensor_record(name, qtype, shape, raw.tobytes(), floats))


def add_plain_tensor(w, records, name, arr, qtype):
    w.add_tensor(name, arr)
    floats = arr.astype(np.float32) if qtype in (T.F32, T.F16) else None
    records.append(tensor_record(name, qtype, arr.shape, arr.tobytes(), floats))


def write_gguf(filename, kvs, tensors, alignment=None, arch="nibbletest"):
    """kvs: list of (key, vtype, value, sub_type); tensors: callables adding tensors."""
    path = OUT / filename
    w = gguf.GGUFWriter(str(path), arch)
    if alignment is not None:
        w.add_custom_alignment(alignment)
    for key, vtype, value, sub in kvs:
        w.add_key_value(key, value, vtype, sub_type=sub)
    records = []
    for add in tensors:
        add(w, records)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    meta = [{"key": "general.architecture", **expect_value(V.STRING, arch)}]
    if alignment is not None:
        meta.append({"key": "general.alignment", **expect_value(V.UINT32, alignment)})
    meta += [{"key": k, **expect_value(t, v, s)} for k, t, v, s in kvs]
    return path, {"file": filename, "version": 3, "alignment": alignment or 32,
                  "metadata": meta, "tensors": records}


def all_types_file():
    kvs = [
        ("test.u8", V.UINT8, 255, None),
        ("test.i8", V.INT8, -128, None),
        ("test.u16", V.UINT16, 65535, None),
        ("test.i16", V.INT16, -32768, None),
        ("test.u32", V.UINT32, 4294967295, None),
        ("test.i32", V.INT32, -2147483648, None),
        ("test.u64", V.UINT64, 18446744073709551615, None),
        ("test.i64", V.INT64, -9223372036854775808, None),
        ("test.f32", V.FLOAT32, 3.14159265, None),
        ("test.f32_neg_tiny", V.FLOAT32, -1.0e-40, None),  # subnormal
        ("test.f64", V.FLOAT64, 2.718281828459045, None),
        ("test.bool_true", V.BOOL, True, None),
        ("test.bool_false", V.BOOL, False, None),
        ("test.string", V.STRING, "hello, GGUF", None),
        ("test.string_empty", V.STRING, "", None),
        ("test.string_utf8", V.STRING, "ünïcødé ✓ \"quoted\"\nnewline", None),
        ("test.arr_u8", V.ARRAY, [0, 1, 254, 255], V.UINT8),
        ("test.arr_i16", V.ARRAY, [-3, 0, 32767], V.INT16),
        ("test.arr_i32", V.ARRAY, [1, -2, 3, -4, 5], None),
        ("test.arr_u64", V.ARRAY, [0, 18446744073709551615], V.UINT64),
        ("test.arr_i64", V.ARRAY, [-9223372036854775808, 9223372036854775807], V.INT64),
        ("test.arr_f32", V.ARRAY, [0.5, -1.25, 1e30], None),
        ("test.arr_f64", V.ARRAY, [1.0 / 3.0, -0.0], V.FLOAT64),
        ("test.arr_bool", V.ARRAY, [True, False, True], None),
        ("test.arr_str", V.ARRAY, ["a", "", "<|im_start|>", "ĠThe"], None),
        ("test.arr_nested", V.ARRAY, [[1, 2, 3], [4], [5, 6]], V.ARRAY),
        ("test.arr_nested_str", V.ARRAY, [["x", "y"], ["z"]], V.ARRAY),
        ("test.arr_long", V.ARRAY, list(range(1000)), V.UINT32),
        ("tokenizer.ggml.scores", V.ARRAY, [float(-i) / 4 for i in range(40)], V.FLOAT32),
    ]
    f32 = rng.standard_normal((3, 5)).astype(np.float32)
    f16 = rng.standard_normal(7).astype(np.float16)
    f32_4d = rng.standard_normal((2, 3, 1, 4)).astype(np.float32)
    i32 = rng.integers(-1000, 1000, (2, 3), dtype=np.int32)
    bf16 = rng.integers(0, 1 << 16, (3, 6), dtype=np.uint16)

    def add_bf16(w, recs):
        raw = bf16.view(np.uint8)
        w.add_tensor("w.bf16", raw, raw_dtype=T.BF16)
        floats = gguf.quants.dequantize(raw, T.BF16)
        recs.append(tensor_record("w.bf16", T.BF16, bf16.shape, raw.tobytes(), floats))

    tensors = [
        lambda w, r: add_plain_tensor(w, r, "w.f32", f32, T.F32),
        lambda w, r: add_plain_tensor(w, r, "w.f16_1d", f16, T.F16),
        lambda w, r: add_plain_tensor(w, r, "w.f32_4d", f32_4d, T.F32),
        lambda w, r: add_plain_tensor(w, r, "w.i32", i32, T.I32),
        add_bf16,
        lambda w, r: add_quant_tensor(w, r, "blk.0.q4_0", T.Q4_0, (3, 64)),
        lambda w, r: add_quant_tensor(w, r, "blk.0.q8_0", T.Q8_0, (1, 96)),
        lambda w, r: add_quant_tensor(w, r, "blk.0.q4_k", T.Q4_K, (3, 256)),
        lambda w, r: add_quant_tensor(w, r, "blk.0.q6_k", T.Q6_K, (2, 1, 256)),
        lambda w, r: add_quant_tensor(w, r, "blk.0.mxfp4", T.MXFP4, (5, 32)),
        lambda w, r: add_quant_tensor(w, r, "blk.0.iq4_xs", T.IQ4_XS, (1, 512)),
    ]
    return write_gguf("all_types.gguf", kvs, tensors)


def aligned64_file():
    kvs = [("test.note", V.STRING, "alignment 64", None),
           ("nibbletest.context_length", V.UINT32, 4096, None)]
    tensors = [
        lambda w, r: add_quant_tensor(w, r, "token_embd.weight", T.Q5_0, (7, 32)),
        lambda w, r: add_quant_tensor(w, r, "output.weight", T.Q3_K, (3, 256)),
        lambda w, r: add_plain_tensor(w, r, "output_norm.weight", rng.standard_normal(17).astype(np.float32), T.F32),
    ]
    return write_gguf("aligned64.gguf", kvs, tensors, alignment=64)


def small_v2_file():
    """GGUFWriter only writes v3; v2 has the same little-endian layout, so patch the version."""
    kvs = [("test.v2", V.BOOL, True, None)]
    tensors = [lambda w, r: add_quant_tensor(w, r, "t.q5_1", T.Q5_1, (2, 32)),
               lambda w, r: add_quant_tensor(w, r, "t.q2_k", T.Q2_K, (1, 256))]
    path, exp = write_gguf("small_v2.gguf", kvs, tensors)
    data = bytearray(path.read_bytes())
    assert data[4:8] == struct.pack("<I", 3)
    data[4:8] = struct.pack("<I", 2)
    path.write_bytes(bytes(data))
    exp["version"] = 2
    return path, exp


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    files = make_dequant_goldens()
    # The type table as gguf-py knows it: {name: [id, block_size, type_size]}.
    table = {t.name: [int(t), *gguf.GGML_QUANT_SIZES[t]] for t in T}
    (OUT / "ggml_types.json").write_text(json.dumps(table, indent=0) + "\n")
    files.append("ggml_types.json")
    for make in (all_types_file, aligned64_file, small_v2_file):
        path, exp = make()
        # Cross-check with gguf-py's own reader before trusting the file.
        r = gguf.GGUFReader(str(path))
        assert len(r.tensors) == len(exp["tensors"]), path
        exp["data_offset"] = int(r.data_offset)
        (OUT / (path.stem + ".json")).write_text(json.dumps(exp, indent=1, ensure_ascii=False) + "\n")
        files += [path.name, path.stem + ".json"]
    total = sum((OUT / f).stat().st_size for f in files)
    print(f"wrote {len(files)} files, {total} bytes, to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
