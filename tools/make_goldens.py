#!/usr/bin/env python3
"""Tiny random-weight models of each architecture nibble supports, and their fp32 logits
computed by HuggingFace transformers: the goldens tests/e2e compares nibble against.

Run on the GPU machine (it has torch + transformers; CPU is enough):
    python3 tools/make_goldens.py --out tests/data/models
Each case becomes tests/data/models/<case>/ holding what save_pretrained wrote (bf16 weights,
config.json, generation_config.json), possibly rewritten to the classic config form, plus
golden.safetensors: tokens_<i> (int32 [T]) and logits_<i> (float32 [T, vocab]).

The weights are bf16 on disk and the logits come from fp32 arithmetic on those same bf16
values, so nibble (which widens bf16 to fp32) should match to fp32 rounding.
"""
import argparse
import json
import math
import os
import shutil
import zlib

import torch
import transformers
from safetensors.torch import save_file

SEQ_LENS = [1, 7, 33, 80]  # one longer than 64 so that attention spans several KV blocks


def perturb(model, gemma_norms):
    """Random norms and biases: default init leaves them at 1 (or 0), which would hide a
    norm weight or a bias that nibble failed to load."""
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                base = 0.0 if gemma_norms else 1.0
                p.copy_(base + 0.3 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def to_classic(cfg, type_key):
    """Rewrite a transformers-5 config.json to the classic Hub form (rope_theta + rope_scaling)."""
    rp = cfg.pop("rope_parameters", None)
    if rp is None:
        return cfg
    if "full_attention" in rp:  # per layer type (Gemma 3)
        full, local = rp["full_attention"], rp.get("sliding_attention", {})
        cfg["rope_theta"] = full["rope_theta"]
        if "rope_theta" in local:
            cfg["rope_local_base_freq"] = local["rope_theta"]
        scaling = {k: v for k, v in full.items() if k != "rope_theta"}
    else:
        cfg["rope_theta"] = rp["rope_theta"]
        scaling = {k: v for k, v in rp.items() if k != "rope_theta"}
    if scaling.get("rope_type", "default") == "default":
        cfg["rope_scaling"] = None
    else:
        if type_key != "rope_type":
            scaling[type_key] = scaling.pop("rope_type")
        cfg["rope_scaling"] = scaling
    return cfg


def logits_for(model, seqs):
    out = []
    with torch.no_grad():
        for s in seqs:
            ids = torch.tensor([s], dtype=torch.long)
            out.append(model(input_ids=ids).logits[0].float())
    return out


def make_case(out_root, name, cls_name, cfg_cls_name, cfg_kwargs, classic=None, shard=None,
              gemma=False, eos=None):
    torch.manual_seed(zlib.crc32(name.encode()))
    cfg_cls = getattr(transformers, cfg_cls_name)
    config = cfg_cls(**cfg_kwargs)
    config._attn_implementation = "eager"
    model = getattr(transformers, cls_name)(config)
    perturb(model, gemma)
    model = model.to(torch.bfloat16)
    if eos is not None:
        model.generation_config.eos_token_id = eos
    d = os.path.join(out_root, name)
    shutil.rmtree(d, ignore_errors=True)
    kw = {"safe_serialization": True}
    if shard:
        kw["max_shard_size"] = shard
    model.save_pretrained(d, **kw)

    # Reload from disk exactly as a user would, in fp32. (Not the in-memory model: its rope
    # inv_freq buffer was rounded to bf16 by .to(bfloat16).)
    def load():
        m = getattr(transformers, cls_name).from_pretrained(d, dtype=torch.float32,
                                                            attn_implementation="eager")
        return m.eval()

    cfg_path = os.path.join(d, "config.json")
    cfg = json.load(open(cfg_path))
    vocab = cfg["vocab_size"]
    g = torch.Generator().manual_seed(99)
    seqs = [torch.randint(0, vocab, (n,), generator=g).tolist() for n in SEQ_LENS]
    logits = logits_for(load(), seqs)
    if classic:
        # The classic form must mean the same model to transformers.
        cfg = to_classic(cfg, classic)
        json.dump(cfg, open(cfg_path, "w"), indent=2)
        classic_logits = logits_for(load(), seqs)
        for a, b in zip(classic_logits, logits):
            err = (a - b).abs().max().item() / b.abs().max().item()
            assert err < 1e-6, f"{name}: classic config disagrees with the native one ({err})"

    tensors = {}
    for i, (s, l) in enumerate(zip(seqs, logits)):
        tensors[f"tokens_{i}"] = torch.tensor(s, dtype=torch.int32)
        tensors[f"logits_{i}"] = l.contiguous()
    save_file(tensors, os.path.join(d, "golden.safetensors"))
    spread = torch.cat(logits).std().item()
    print(f"{name}: {cls_name}, logits std {spread:.3f}, files {sorted(os.listdir(d))}")
    print("  config:", json.dumps({k: cfg[k] for k in cfg if "rope" in k or "layer_types" in k
                                   or "sliding" in k or "tie" in k}))
    assert spread > 0.5, f"{name}: logits too flat ({spread})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/models")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    print("transformers", transformers.__version__, "torch", torch.__version__)
    common = dict(initializer_range=0.08, rms_norm_eps=1e-5, max_position_embeddings=512)

    make_case(args.out, "llama3_classic", "LlamaForCausalLM", "LlamaConfig", dict(
        common, vocab_size=997, hidden_size=96, intermediate_size=200, num_hidden_layers=3,
        num_attention_heads=6, num_key_value_heads=2, tie_word_embeddings=False,
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                         "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 64},
        bos_token_id=1, eos_token_id=[2, 3]), classic="rope_type", eos=[2, 3])

    make_case(args.out, "llama_linear_sharded", "LlamaForCausalLM", "LlamaConfig", dict(
        common, vocab_size=1031, hidden_size=80, intermediate_size=136, num_hidden_layers=2,
        num_attention_heads=5, num_key_value_heads=5, tie_word_embeddings=True,
        rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}),
        shard="150KB")

    make_case(args.out, "mistral_window", "MistralForCausalLM", "MistralConfig", dict(
        common, vocab_size=911, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=1, head_dim=16, sliding_window=48,
        tie_word_embeddings=False, rope_parameters={"rope_type": "default", "rope_theta": 1e6}),
        classic="type")

    make_case(args.out, "qwen2_bias", "Qwen2ForCausalLM", "Qwen2Config", dict(
        common, vocab_size=1003, hidden_size=96, intermediate_size=160, num_hidden_layers=3,
        num_attention_heads=6, num_key_value_heads=3, tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6}, rms_norm_eps=1e-6),
        classic="rope_type")

    make_case(args.out, "qwen3_headdim", "Qwen3ForCausalLM", "Qwen3Config", dict(
        common, vocab_size=1009, hidden_size=64, intermediate_size=144, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, head_dim=24, tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 1e6}, rms_norm_eps=1e-6))

    make_case(args.out, "gemma3_text", "Gemma3ForCausalLM", "Gemma3TextConfig", dict(
        common, vocab_size=1024, hidden_size=64, intermediate_size=152, num_hidden_layers=5,
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, query_pre_attn_scalar=24,
        sliding_window=16, rms_norm_eps=1e-6, final_logit_softcapping=None,
        layer_types=["sliding_attention", "sliding_attention", "full_attention",
                     "sliding_attention", "full_attention"],
        rope_parameters={"full_attention": {"rope_type": "linear", "factor": 8.0,
                                            "rope_theta": 1e6},
                         "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}},
        hidden_activation="gelu_pytorch_tanh"), gemma=True)

    make_case(args.out, "gemma3_classic_softcap", "Gemma3ForCausalLM", "Gemma3TextConfig", dict(
        common, vocab_size=1000, hidden_size=48, intermediate_size=100, num_hidden_layers=3,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, query_pre_attn_scalar=32,
        sliding_window=24, rms_norm_eps=1e-6, final_logit_softcapping=30.0,
        attn_logit_softcapping=50.0,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
        rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1e6},
                         "sliding_attention": {"rope_type": "default", "rope_theta": 1e4}},
        hidden_activation="gelu_pytorch_tanh"), gemma=True, classic="rope_type")


if __name__ == "__main__":
    main()
