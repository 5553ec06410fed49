// nibble quantize -m DIR --format nf4|fp4|int4|mxfp4|nvfp4|fp8 [--group N] -o OUT
// Writes a HuggingFace-style folder that nibble (and, for nf4/fp4/int4, transformers) loads.
#include <cstdio>

#include "command.h"
#include "quant/quantize_model.h"

namespace nibble::app {
namespace {

struct Options {
  std::string model, out;
  quant::QuantizeOptions q;
  bool no_double_quant = false;
};

int run(Options& o) {
  o.q.double_quant = !o.no_double_quant;
  auto rep = quant::quantize_model(o.model, o.out, o.q);
  if (!rep) return report_error(rep.status());
  std::printf("%s: %lld tensors quantized (%lld params) as %s, %lld kept; %.1f MB written\n", o.out.c_str(),
              static_cast<long long>(rep->n_quantized), static_cast<long long>(rep->params_quantized),
              o.q.format.c_str(), static_cast<long long>(rep->n_kept), rep->bytes_out / 1e6);
  return 0;
}

const bool registered = register_command({
    "quantize", "Quantize a model folder's Linear weights (nf4, fp4, int4, mxfp4, nvfp4, fp8)",
    [](CLI::App& sub) {
      auto o = std::make_shared<Options>();
      sub.add_option("-m,--model", o->model, "model folder (config.json + safetensors)")->required();
      sub.add_option("--format", o->q.format, "nf4 | fp4 (bitsandbytes), int4 (compressed-tensors), "
                                              "mxfp4 | nvfp4 | fp8 (quant_method nibble)")->required();
      sub.add_option("--group", o->q.group, "nf4/fp4 block size (64); int4 group size (128, -1 per channel)");
      sub.add_flag("--no-double-quant", o->no_double_quant, "nf4/fp4: keep fp32 absmax (no double quantization)");
      sub.add_option("-o,--out", o->out, "output folder")->required();
      return [o] { return run(*o); };
    }});

}  // namespace
}  // namespace nibble::app
