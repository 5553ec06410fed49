#!/usr/bin/env python3
"""End-to-end anchor for `nibble bench --device cuda`: HuggingFace transformers + bitsandbytes NF4
(double-quantized, blocks of 64, bf16 compute) on a random-weight model of the given config's
shape, greedy, `--gen` new tokens after a `--prompt`-token random prompt, per batch size.

Prints one JSON line per batch: {"variant", "batch", "prompt_tokens", "gen_tokens", "tok_per_s",
"ttft_ms", "gpu_mem_GB"}; nibble bench --anchor reads them. Run on the GPU machine with
bitsandbytes importable (tools/run_e2e_bench.sh puts the PyPI wheel's files on PYTHONPATH).
Decode tok/s = batch * gen / (time of generate(gen) - time of generate(1)), so prefill is not
counted in the decode rate, as nibble bench reports it.
"""
import argparse
import json
import time

import torch
import transformers


def build(config_path, quant):
    cfg = transformers.AutoConfig.from_pretrained(config_path)
    torch.manual_seed(0)
    with torch.device("cuda"):
        try:
            model = transformers.AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
        except TypeError:  # transformers 4 spells it torch_dtype
            model = transformers.AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16)
    model.eval()
    if quant == "nf4":
        import bitsandbytes as bnb

        # Replace every decoder Linear by a bnb Linear4bit holding the same (random) weights, as
        # from_pretrained(quantization_config=BitsAndBytesConfig(nf4, double quant)) would;
        # the LM head stays bf16 as transformers leaves it.
        for name, module in list(model.model.named_modules()):
            for child_name, child in list(module.named_children()):
                if isinstance(child, torch.nn.Linear):
                    q = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                          compute_dtype=torch.bfloat16, compress_statistics=True,
                                          quant_type="nf4", device="cpu")
                    q.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False,
                                                 compress_statistics=True, quant_type="nf4", blocksize=64)
                    if child.bias is not None:
                        q.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
                    q = q.to("cuda")  # Params4bit quantizes on its way to the GPU
                    setattr(module, child_name, q)
                    del child
        torch.cuda.empty_cache()
    return model


def timed_generate(model, ids, n):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.no_grad():
        model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                       do_sample=False, pad_token_id=0)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--quant", default="nf4", choices=["nf4", "bf16"])
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 16])
    a = ap.parse_args()
    model = build(a.config, a.quant)
    vocab = model.config.vocab_size
    for b in a.batch:
        ids = torch.randint(0, vocab, (b, a.prompt), device="cuda")
        timed_generate(model, ids, 4)  # warm-up
        t1 = timed_generate(model, ids, 1)
        tn = timed_generate(model, ids, a.gen)
        print(json.dumps({"variant": f"transformers {transformers.__version__} + bitsandbytes nf4" if a.quant == "nf4"
                          else f"transformers {transformers.__version__} bf16",
                          "batch": b, "prompt_tokens": a.prompt, "gen_tokens": a.gen,
                          "tok_per_s": b * (a.gen - 1) / (tn - t1), "ttft_ms": t1 * 1e3,
                          "gpu_mem_GB": torch.cuda.max_memory_allocated() / 1e9}), flush=True)


if __name__ == "__main__":
    main()
