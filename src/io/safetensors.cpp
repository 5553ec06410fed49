#include "io/safetensors.h"

#include <filesystem>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

namespace nibble {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Headers of real checkpoints are well under a megabyte; 100 MB guards against a garbage
// length field without rejecting anything plausible.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

Result<TensorRef> parse_entry(const std::string& path, const std::string& name, const json& e,
                              const uint8_t* data, uint64_t data_size) {
  if (!e.is_object()) return Status::invalid("{}: tensor '{}': entry is not an object", path, name);
  auto dt = e.find("dtype");
  auto sh = e.find("shape");
  auto off = e.find("data_offsets");
  if (dt == e.end() || !dt->is_string())
    return Status::invalid("{}: tensor '{}': missing or non-string 'dtype'", path, name);
  if (sh == e.end() || !sh->is_array())
    return Status::invalid("{}: tensor '{}': missing or non-array 'shape'", path, name);
  if (off == e.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned())
    return Status::invalid("{}: tensor '{}': 'data_offsets' must be two non-negative integers", path,
                           name);
  TensorRef t;
  t.name = name;
  t.file = path;
  auto dtype = dtype_from_safetensors(dt->get<std::string>());
  if (!dtype)
    return Status::unsupported("{}: tensor '{}': unknown dtype '{}'", path, name,
                               dt->get<std::string>());
  t.dtype = *dtype;
  uint64_t numel = 1;
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned())
      return Status::invalid("{}: tensor '{}': shape entries must be non-negative integers", path,
                             name);
    uint64_t v = d.get<uint64_t>();
    if (v != 0 && numel > std::numeric_limits<uint64_t>::max() / v)
      return Status::invalid("{}: tensor '{}': shape overflows", path, name);
    numel *= v;
    t.shape.push_back(static_cast<int64_t>(v));
  }
  uint64_t begin = (*off)[0].get<uint64_t>(), end = (*off)[1].get<uint64_t>();
  if (end < begin) return Status::invalid("{}: tensor '{}': data_offsets end before begin", path, name);
  if (end > data_size)
    return Status::invalid("{}: tensor '{}': data [{}, {}) runs past the end of the file ({} data bytes); "
                           "is the file truncated?",
                           path, name, begin, end, data_size);
  const uint64_t want = numel * dtype_size(t.dtype);
  if (end - begin != want)
    return Status::invalid("{}: tensor '{}': {} bytes for shape {} of {} needs {}", path, name,
                           end - begin, shape_str(t.shape), dtype_name(t.dtype), want);
  t.data = data + begin;
  t.nbytes = static_cast<size_t>(want);
  return t;
}

}  // namespace

Result<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  NB_ASSIGN_OR_RETURN(f.file_, MappedFile::open(path));
  const uint8_t* p = f.file_->data();
  const uint64_t size = f.file_->size();
  if (size < 8) return Status::invalid("{}: file too short for a safetensors header ({} bytes)", path, size);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | p[i];
  if (header_len > size - 8)
    return Status::invalid("{}: header length {} is longer than the file ({} bytes); truncated or not safetensors",
                           path, header_len, size);
  if (header_len > kMaxHeaderBytes)
    return Status::invalid("{}: header length {} is implausibly large", path, header_len);
  json header = json::parse(p + 8, p + 8 + header_len, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object())
    return Status::invalid("{}: header is not a JSON object", path);
  const uint8_t* data = p + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (it->is_object())
        for (auto m = it->begin(); m != it->end(); ++m)
          if (m->is_string()) f.metadata_[m.key()] = m->get<std::string>();
      continue;
    }
    NB_ASSIGN_OR_RETURN(TensorRef t, parse_entry(path, it.key(), *it, data, data_size));
    f.tensors_.emplace(it.key(), std::move(t));
  }
  return f;
}

Result<std::unique_ptr<SafetensorsSource>> SafetensorsSource::open_files(
    const std::vector<std::string>& paths) {
  auto src = std::unique_ptr<SafetensorsSource>(new SafetensorsSource());
  for (const auto& p : paths) {
    NB_ASSIGN_OR_RETURN(SafetensorsFile f, SafetensorsFile::open(p));
    src->files_.push_back(std::move(f));
  }
  // Index after all files are in place: map nodes keep their addresses when the files move.
  for (const auto& f : src->files_)
    for (const auto& [name, t] : f.tensors()) {
      if (src->index_.count(name))
        return Status::invalid("{}: tensor '{}' also appears in {}", f.path(), name,
                               src->index_[name]->file);
      src->index_[name] = &t;
    }
  src->describe_ = paths.size() == 1 ? paths[0] : fmt::format("{} safetensors shards", paths.size());
  return src;
}

Result<std::unique_ptr<SafetensorsSource>> SafetensorsSource::open_dir(const std::string& dir) {
  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(index)) {
    NB_ASSIGN_OR_RETURN(std::string text, read_text_file(index.string()));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.contains("weight_map") || !j["weight_map"].is_object())
      return Status::invalid("{}: not a valid index (needs a 'weight_map' object)", index.string());
    std::set<std::string> shards;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it->is_string())
        return Status::invalid("{}: weight_map['{}'] is not a file name", index.string(), it.key());
      shards.insert((fs::path(dir) / it->get<std::string>()).string());
    }
    NB_ASSIGN_OR_RETURN(auto src, open_files({shards.begin(), shards.end()}));
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it)
      if (!src->has(it.key()))
        return Status::not_found("{}: tensor '{}' is not in {}", index.string(), it.key(),
                                 it->get<std::string>());
    return src;
  }
  if (fs::exists(single)) return open_files({single.string()});
  // Some exports use other names: take every *.safetensors in the folder.
  std::vector<std::string> found;
  if (fs::is_directory(dir))
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().extension() == ".safetensors") found.push_back(e.path().string());
  if (found.empty())
    return Status::not_found("{}: no model.safetensors or model.safetensors.index.json", dir);
  std::sort(found.begin(), found.end());
  return open_files(found);
}

Result<TensorRef> SafetensorsSource::get(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) return Status::not_found("{}: no tensor '{}'", describe_, name);
  return *it->second;
}

std::vector<std::string> SafetensorsSource::names() const {
  std::vector<std::string> out;
  for (const auto& [n, _] : index_) out.push_back(n);
  return out;
}

}  // namespace nibble
