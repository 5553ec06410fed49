// nibble quantize -m DIR|FILE.gguf --format nf4|fp4|int4|mxfp4|nvfp4|fp8|f32|bf16 [--group N] -o OUT
// Writes a HuggingFace-style folder that nibble (and, for nf4/fp4/int4, transformers) loads. A
// GGUF input is first dequantized exactly to fp32 (src/runtime/gguf_export.h); --format f32 or
// bf16 then writes it unquantized (a GGUF -> HuggingFace export).
#include <cstdio>

#include "command.h"
#include "runtime/gguf_export.h"

namespace nibble::app {
namespace {

struct Options {
  std::string model, out;
  quant::QuantizeOptions q;
  bool no_double_quant = false;
};

int run(Options& o) {
  o.q.double_quant = !o.no_double_quant;
  auto rep = quantize_any(o.model, o.out, o.q);
  if (!rep) return report_error(rep.status());
  std::printf("%s: %lld tensors quantized (%lld params) as %s, %lld kept; %.1f MB written\n", o.out.c_str(),
              static_cast<long long>(rep->n_quantized), static_cast<long long>(rep->params_quantized),
              o.q.format.c_str(), static_cast<long long>(rep->n_kept), rep->bytes_out / 1e6);
  // Bits per weight of the quantized matrices alone (codes + scales), and of the whole file.
  if (rep->params_quantized)
    std::printf("bits per quantized weight %.4f, bits per weight (all tensors) %.4f\n",
                8.0 * static_cast<double>(rep->bytes_quantized) / static_cast<double>(rep->params_quantized),
                8.0 * static_cast<double>(rep->bytes_out) / static_cast<double>(rep->params_total));
  return 0;
}

const bool registered = register_command({
    "quantize", "Quantize a model folder's or GGUF file's Linear weights (nf4, fp4, int4, mxfp4, nvfp4, fp8), "
                "or export a GGUF file as an f32/bf16 HuggingFace folder",
    [](CLI::App& sub) {
      auto o = std::make_shared<Options>();
      sub.add_option("-m,--model", o->model, "model folder (config.json + safetensors) or .gguf file")->required();
      sub.add_option("--format", o->q.format, "nf4 | fp4 (bitsandbytes), int4 (compressed-tensors), "
                                              "mxfp4 | nvfp4 | fp8 (quant_method nibble); f32 | bf16: no quantization")->required();
      sub.add_option("--group", o->q.group, "nf4/fp4 block size (64); int4 group size (128, -1 per channel)");
      sub.add_flag("--no-double-quant", o->no_double_quant, "nf4/fp4: keep fp32 absmax (no double quantization)");
      sub.add_option("-o,--out", o->out, "output folder")->required();
      return [o] { return run(*o); };
    }});

}  // namespace
}  // namespace nibble::app
