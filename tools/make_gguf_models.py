#!/usr/bin/env python3
"""Converts the tiny golden HF models in tests/data/models to GGUF with gguf-py's GGUFWriter,
following llama.cpp's conventions, for tests/e2e/gguf_models_test.cpp.

    pip install gguf numpy
    python3 tools/make_gguf_models.py                 # the committed set (see COMMITTED)
    python3 tools/make_gguf_models.py --all --twins --out /tmp/gguf_models
                                                      # every model x type, with F32 twins

Conventions (llama.cpp's convert_hf_to_gguf.py, re-implemented here from its documented behaviour):
- metadata `{arch}.block_count`, `.embedding_length`, `.feed_forward_length`, `.context_length`,
  `.attention.head_count(_kv)`, `.attention.key_length/value_length`,
  `.attention.layer_norm_rms_epsilon`, `.rope.freq_base`, `.rope.scaling.type/factor` (linear);
- Llama 3.1 rope scaling as a `rope_freqs.weight` F32 tensor of per-frequency divisors;
- arch `llama`: the rows of Q and K permuted so that each head's two rotary halves interleave
  (GGUF row h*hd + 2i + j holds HF row h*hd + j*hd/2 + i); qwen2 / qwen3 / gemma3 unpermuted;
- Gemma 3 RMSNorm weights stored as 1 + w (llama.cpp's Gemma kernels multiply by w);
- 1-D tensors (norms, biases, rope_freqs) are always F32; a matrix whose row length is not a
  multiple of the quantization block falls back to F16 (what llama.cpp does);
- tensor names token_embd, output_norm, output, blk.N.{attn_norm, attn_q, attn_k, attn_v,
  attn_output, attn_q_norm, attn_k_norm, ffn_norm, ffn_gate, ffn_up, ffn_down,
  post_attention_norm, post_ffw_norm}.{weight,bias}.

Quantized files (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, MXFP4: what gguf.quants can quantize and nibble
can decode) are checked against their dequantized values: manifest.json records, per quantized
file and tensor, the FNV-1a 64 hash of gguf.quants.dequantize's float32 bytes (GGUF row order),
so the test can build the F32 twin in memory and know it is gguf-py's bit for bit; --twins also
writes the twin files.

The tiny models' vocabularies (~1000 ids) get a real tokenizer cut to size: GPT-2's first ids
(256 bytes, then merge results in merge order), the merges that stay inside the cut vocabulary,
and three control tokens (<|endoftext|>, <|im_start|>, <|im_end|>) at the top ids, with a
ChatML template. Only the files in WITH_TOKENIZER carry it (it costs ~35 KB per file).
"""
import argparse
import json
import lzma
import math
import os
import struct
import sys

import numpy as np

import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "tests", "data", "models")
SHARED = os.path.join(os.path.dirname(ROOT), "shared")

DENSE = {"f32": Q.F32, "f16": Q.F16, "bf16": Q.BF16}
QUANT = {"q4_0": Q.Q4_0, "q4_1": Q.Q4_1, "q5_0": Q.Q5_0, "q5_1": Q.Q5_1, "q8_0": Q.Q8_0, "mxfp4": Q.MXFP4}

# What is committed under tests/data/gguf_models (< 4 MB with the manifest): every dense type
# written once by gguf-py across the families, every quantized type once; the test derives the
# other dense types of each model in memory.
COMMITTED = [
    ("llama3_classic", "bf16"),
    ("llama3_classic", "q4_1"),
    ("llama_linear_sharded", "f16"),
    ("qwen3_headdim", "bf16"),
    ("gemma3_classic_softcap", "f32"),
    ("qwen2_bias", "q4_0"),
    ("qwen2_bias", "q5_0"),
    ("qwen2_bias", "q5_1"),
    ("qwen2_bias", "q8_0"),
    ("qwen2_bias", "mxfp4"),
]
WITH_TOKENIZER = {("llama3_classic", "q4_1"), ("qwen2_bias", "q4_0")}

ARCH = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "Gemma3ForCausalLM": "gemma3",
}


def read_safetensors(folder):
    """name -> float32 array, for every *.safetensors in the folder (bf16/f16/f32)."""
    out = {}
    for fn in sorted(os.listdir(folder)):
        if not fn.endswith(".safetensors") or fn.startswith("golden"):
            continue
        with open(os.path.join(folder, fn), "rb") as f:
            data = f.read()
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + n])
        base = 8 + n
        for name, info in header.items():
            if name == "__metadata__":
                continue
            a, b = info["data_offsets"]
            raw = data[base + a : base + b]
            if info["dtype"] == "BF16":
                arr = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
            elif info["dtype"] == "F16":
                arr = np.frombuffer(raw, np.float16).astype(np.float32)
            elif info["dtype"] == "F32":
                arr = np.frombuffer(raw, np.float32).copy()
            else:
                raise SystemExit(f"{fn}: {name}: dtype {info['dtype']} not handled")
            out[name] = arr.reshape(info["shape"])
    return out


def rope_of(cfg, layer_type="full_attention"):
    """(theta, rope dict or None) from either config form."""
    params = cfg.get("rope_parameters")
    if isinstance(params, dict) and layer_type in params:
        params = params[layer_type]
    if params:
        theta = params.get("rope_theta", cfg.get("rope_theta", 10000.0))
        kind = params.get("rope_type", params.get("type", "default"))
        return theta, (None if kind == "default" else params)
    scaling = cfg.get("rope_scaling")
    return cfg.get("rope_theta", 10000.0), scaling


def llama3_freq_divisors(theta, head_dim, s):
    """Llama 3.1 rope scaling as per-frequency divisors of the base frequencies."""
    factor = s["factor"]
    lo, hi = s.get("low_freq_factor", 1.0), s.get("high_freq_factor", 4.0)
    old_ctx = s.get("original_max_position_embeddings", 8192)
    lo_wavelen, hi_wavelen = old_ctx / lo, old_ctx / hi
    out = []
    for i in range(0, head_dim, 2):
        freq = 1.0 / (theta ** (i / head_dim))
        wavelen = 2 * math.pi / freq
        if wavelen < hi_wavelen:
            out.append(1.0)
        elif wavelen > lo_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - lo) / (hi - lo)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def interleave_rotary_halves(w, n_heads):
    """llama.cpp's Q/K row order for arch llama: within each head, rows (half j, index i) ->
    position 2i + j. Works on weights [rows, cols] and biases [rows]."""
    rows = w.shape[0]
    hd = rows // n_heads
    return w.reshape(n_heads, 2, hd // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_name(hf, arch):
    top = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
           "lm_head.weight": "output.weight"}
    if hf in top:
        return top[hf]
    parts = hf.split(".")
    assert parts[0] == "model" and parts[1] == "layers", hf
    n, rest = parts[2], ".".join(parts[3:])
    if rest == "post_attention_layernorm.weight":  # Gemma's sandwich norm; Llama's pre-MLP norm
        return f"blk.{n}." + ("post_attention_norm.weight" if arch == "gemma3" else "ffn_norm.weight")
    layer = {
        "input_layernorm.weight": "attn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
        "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias",
        "self_attn.v_proj.bias": "attn_v.bias",
        "self_attn.q_norm.weight": "attn_q_norm.weight", "self_attn.k_norm.weight": "attn_k_norm.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
        "mlp.down_proj.weight": "ffn_down.weight",
        "pre_feedforward_layernorm.weight": "ffn_norm.weight",
        "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
    }
    return f"blk.{n}." + layer[rest]


def tiny_tokenizer(vocab_size):
    """GPT-2's tokenizer cut to vocab_size ids, three control tokens at the top."""
    path = os.path.join(SHARED, "tokenizers", "gpt2", "tokenizer.json.xz")
    tj = json.loads(lzma.open(path).read())
    by_id = sorted(tj["model"]["vocab"].items(), key=lambda kv: kv[1])
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    n_plain = vocab_size - len(specials)
    tokens = [t for t, _ in by_id[:n_plain]] + specials
    types = [1] * n_plain + [3] * len(specials)
    keep = set(tokens[:n_plain])
    merges = []
    for m in tj["model"]["merges"]:
        a, b = m.split(" ") if isinstance(m, str) else m
        if a in keep and b in keep and a + b in keep:
            merges.append(f"{a} {b}")
    return tokens, types, merges, n_plain  # eos = n_plain (<|endoftext|>)


CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def fnv1a64(b):
    h = 0xCBF29CE484222325
    for byte in b:
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def fnv1a64_np(arr):
    # Fast enough for ~1M bytes: process in python ints over a bytes object.
    return f"{fnv1a64(np.ascontiguousarray(arr, dtype='<f4').tobytes()):016x}"


def convert(model, type_name, out_dir, with_tokenizer, twin):
    folder = os.path.join(MODELS, model)
    cfg = json.load(open(os.path.join(folder, "config.json")))
    arch = ARCH[cfg["architectures"][0]]
    weights = read_safetensors(folder)
    hidden, n_heads = cfg["hidden_size"], cfg["num_attention_heads"]
    n_kv = cfg.get("num_key_value_heads", n_heads)
    head_dim = cfg.get("head_dim") or hidden // n_heads
    qtype = DENSE[type_name] if type_name in DENSE else QUANT[type_name]
    path = os.path.join(out_dir, f"{model}.{type_name}.gguf")
    w = GGUFWriter(path, arch)
    w.add_string("general.name", model)
    w.add_uint32("general.file_type", 0)  # informational only
    w.add_uint32(f"{arch}.block_count", cfg["num_hidden_layers"])
    w.add_uint32(f"{arch}.context_length", cfg["max_position_embeddings"])
    w.add_uint32(f"{arch}.embedding_length", hidden)
    w.add_uint32(f"{arch}.feed_forward_length", cfg["intermediate_size"])
    w.add_uint32(f"{arch}.attention.head_count", n_heads)
    w.add_uint32(f"{arch}.attention.head_count_kv", n_kv)
    w.add_uint32(f"{arch}.attention.key_length", head_dim)
    w.add_uint32(f"{arch}.attention.value_length", head_dim)
    w.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", cfg["rms_norm_eps"])
    theta, scaling = rope_of(cfg)
    w.add_float32(f"{arch}.rope.freq_base", theta)
    extra = {}
    if scaling:
        kind = scaling.get("rope_type", scaling.get("type"))
        if kind == "linear":
            w.add_string(f"{arch}.rope.scaling.type", "linear")
            w.add_float32(f"{arch}.rope.scaling.factor", scaling["factor"])
        elif kind == "llama3":
            extra["rope_freqs.weight"] = llama3_freq_divisors(theta, head_dim, scaling)
        else:
            raise SystemExit(f"{model}: rope {kind} not handled")
    if arch == "gemma3":
        types = cfg.get("layer_types")
        pattern = types.index("full_attention") + 1 if types else cfg.get("_sliding_window_pattern", 6)
        w.add_uint32(f"{arch}.attention.sliding_window", cfg["sliding_window"])
        w.add_uint32(f"{arch}.attention.sliding_window_pattern", pattern)
        if cfg.get("final_logit_softcapping"):
            w.add_float32(f"{arch}.final_logit_softcapping", cfg["final_logit_softcapping"])
        assert cfg.get("query_pre_attn_scalar", head_dim) == head_dim, "GGUF has no query_pre_attn_scalar"
    if with_tokenizer:
        tokens, ttypes, merges, eos = tiny_tokenizer(weights["model.embed_tokens.weight"].shape[0])
        w.add_string("tokenizer.ggml.model", "gpt2")
        w.add_string("tokenizer.ggml.pre", "gpt2")
        w.add_array("tokenizer.ggml.tokens", tokens)
        w.add_array("tokenizer.ggml.token_type", ttypes)
        w.add_array("tokenizer.ggml.merges", merges)
        w.add_uint32("tokenizer.ggml.bos_token_id", eos)
        w.add_uint32("tokenizer.ggml.eos_token_id", eos)
        w.add_uint32("tokenizer.ggml.eot_token_id", eos + 2)
        w.add_bool("tokenizer.ggml.add_bos_token", False)
        w.add_string("tokenizer.chat_template", CHATML)

    tensors = dict(extra)
    for hf, arr in weights.items():
        if arch == "gemma3" and hf.endswith("norm.weight"):
            arr = arr + np.float32(1.0)
        if arch == "llama" and (".q_proj." in hf or ".k_proj." in hf):
            arr = interleave_rotary_halves(arr, n_heads if ".q_proj." in hf else n_kv)
        tensors[gguf_name(hf, arch)] = np.ascontiguousarray(arr, dtype=np.float32)

    manifest, twin_tensors = {}, {}
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    for name in sorted(tensors, key=lambda n: (not n.startswith("token_embd"), n)):
        arr = tensors[name]
        t = qtype if arr.ndim == 2 else Q.F32
        if t not in (Q.F32, Q.F16, Q.BF16) and arr.shape[-1] % block != 0:
            t = Q.F16  # llama.cpp's fallback for rows that are not whole blocks
        if t == Q.F32:
            data = arr
        elif t == Q.F16:
            data = arr.astype(np.float16)
        else:
            data = gguf.quants.quantize(arr, t)
        w.add_tensor(name, data, raw_dtype=t if t not in (Q.F32, Q.F16) else None)
        if type_name in QUANT:
            deq = gguf.quants.dequantize(data, t) if t not in (Q.F32, Q.F16) else data.astype(np.float32)
            manifest[name] = {"type": t.name, "fnv1a64": fnv1a64_np(deq)}
            twin_tensors[name] = deq
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if twin and type_name in QUANT:
        tw = GGUFWriter(os.path.join(out_dir, f"{model}.{type_name}.dequant.gguf"), arch)
        r = gguf.GGUFReader(path)
        for field in r.fields.values():
            if field.name.startswith("GGUF.") or field.name == "general.architecture":
                continue
            tw.add_key_value(field.name, field.contents(), field.types[0],
                             field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None)
        for name, arr in twin_tensors.items():
            tw.add_tensor(name, arr)
        tw.write_header_to_file()
        tw.write_kv_data_to_file()
        tw.write_tensors_to_file()
        tw.close()
    return path, manifest


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "gguf_models"))
    ap.add_argument("--all", action="store_true", help="every Llama-family/Qwen/Gemma model in every type")
    ap.add_argument("--twins", action="store_true", help="also write <file>.dequant.gguf F32 twins")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    jobs = COMMITTED
    if args.all:
        models = ["llama3_classic", "llama_linear_sharded", "qwen2_bias", "qwen3_headdim", "gemma3_classic_softcap"]
        jobs = [(m, t) for m in models for t in list(DENSE) + list(QUANT)]
    manifest = {}
    for model, t in jobs:
        path, m = convert(model, t, args.out, (model, t) in WITH_TOKENIZER, args.twins)
        print(f"{os.path.relpath(path, ROOT)}: {os.path.getsize(path)} bytes", file=sys.stderr)
        if m:
            manifest[os.path.basename(path)] = m
    entries = {"model_of": {f"{m}.{t}.gguf": m for m, t in jobs}, "dequantized": manifest}
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(entries, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
