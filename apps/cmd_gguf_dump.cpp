// `nibble gguf-dump FILE`: a GGUF file's header, metadata (long arrays abbreviated) and tensor
// table, for users and for checking what the reader sees.
#include <cstdio>

#include <fmt/ranges.h>

#include "command.h"
#include "io/gguf.h"

namespace nibble::app {
namespace {

int run_gguf_dump(const std::string& path, size_t max_items, size_t max_string, bool no_tensors) {
  auto r = GgufFile::open(path);
  if (!r) return report_error(r.status());
  const GgufFile& f = r.value();
  std::printf("%s: GGUF v%u, %zu metadata keys, %zu tensors, alignment %u, data at %llu, %llu bytes\n",
              f.name().c_str(), f.version(), f.metadata().size(), f.tensors().size(), f.alignment(),
              static_cast<unsigned long long>(f.data_offset()), static_cast<unsigned long long>(f.file_size()));

  std::printf("\nmetadata:\n");
  for (const GgufKV& kv : f.metadata()) {
    std::string type(gguf_type_name(kv.value.type));
    if (kv.value.type == GgufValueType::kArray)
      type = fmt::format("array<{}>[{}]", gguf_type_name(kv.value.array.elem_type), kv.value.array.size);
    std::printf("  %-44s %-22s %s\n", kv.key.c_str(), type.c_str(),
                gguf_value_to_string(kv.value, max_items, max_string).c_str());
  }
  if (no_tensors) return 0;

  std::printf("\ntensors (shape row-major; ne = GGUF order, fastest first):\n");
  std::printf("  %5s  %-40s %-8s %-22s %-22s %12s %12s\n", "#", "name", "type", "shape", "ne", "offset", "bytes");
  uint64_t total = 0;
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const GgufTensor& t = f.tensors()[i];
    std::printf("  %5zu  %-40s %-8s %-22s %-22s %12llu %12llu\n", i, t.name.c_str(),
                std::string(ggml_type_name(t.type)).c_str(), fmt::format("{}", fmt::join(t.shape, " x ")).c_str(),
                fmt::format("[{}]", fmt::join(t.ne, ", ")).c_str(), static_cast<unsigned long long>(t.offset),
                static_cast<unsigned long long>(t.nbytes));
    total += t.nbytes;
  }
  std::printf("  total tensor bytes: %llu\n", static_cast<unsigned long long>(total));
  return 0;
}

const bool registered = register_command({
    "gguf-dump",
    "Print a GGUF file's metadata and tensor table",
    [](CLI::App& sub) -> std::function<int()> {
      auto path = std::make_shared<std::string>();
      auto max_items = std::make_shared<size_t>(8);
      auto max_string = std::make_shared<size_t>(160);
      auto no_tensors = std::make_shared<bool>(false);
      sub.add_option("file", *path, "GGUF file")->required();
      sub.add_option("--max-items", *max_items, "Array elements shown before abbreviating (default 8)");
      sub.add_option("--max-string", *max_string, "String bytes shown before abbreviating (default 160)");
      sub.add_flag("--no-tensors", *no_tensors, "Metadata only");
      return [=] { return run_gguf_dump(*path, *max_items, *max_string, *no_tensors); };
    },
});

}  // namespace
}  // namespace nibble::app
