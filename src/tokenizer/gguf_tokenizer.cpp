#include "tokenizer/gguf_tokenizer.h"

#include <algorithm>
#include <unordered_map>

#include <nlohmann/json.hpp>

namespace nibble {

namespace {

// nlohmann::json (a std::map): ordered_json looks keys up linearly, quadratic for a 150k vocab.
using json = nlohmann::json;

// Split regexes as the families' own tokenizer.json files write them.
constexpr const char* kLlama3Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kTekkenSplit =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}
json split_then_bytes(const char* regex) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
            byte_level(false)}}};
}

// The pre_tokenizer and whether merges are skipped for whole-vocab words (Llama 3's
// ignore_merges), by llama.cpp's tokenizer.ggml.pre name.
Result<std::pair<json, bool>> pre_tokenizer_for(const std::string& pre, const std::string& where) {
  if (pre == "default" || pre == "gpt2" || pre == "gpt-2") return std::pair{byte_level(true), false};
  if (pre == "smollm")  // SmolLM: digits one by one, then GPT-2's regex
    return std::pair{json{{"type", "Sequence"},
                          {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level(true)}}},
                     false};
  if (pre == "llama3" || pre == "llama-bpe" || pre == "llama-v3") return std::pair{split_then_bytes(kLlama3Split), true};
  if (pre == "qwen2") return std::pair{split_then_bytes(kQwen2Split), false};
  if (pre == "tekken") return std::pair{split_then_bytes(kTekkenSplit), true};
  return Status::unsupported("{}: tokenizer.ggml.pre '{}' is not supported", where, pre);
}

// --- tokenizer.ggml.model "llama": SentencePiece-style BPE (Llama 2, Mistral v0.1, Gemma) ---

const char* const kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

size_t utf8_len(unsigned char c) { return c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1; }

json template_post(const std::vector<std::pair<std::string, int64_t>>& before,
                   const std::vector<std::pair<std::string, int64_t>>& after) {
  json single = json::array(), pair = json::array(), specials = json::object();
  auto add = [&](json& seq, const std::vector<std::pair<std::string, int64_t>>& toks, int type_id) {
    for (const auto& [t, id] : toks) {
      seq.push_back({{"SpecialToken", {{"id", t}, {"type_id", type_id}}}});
      specials[t] = {{"id", t}, {"ids", {id}}, {"tokens", {t}}};
    }
  };
  auto seq = [](const char* name, int type_id) { return json{{"Sequence", {{"id", name}, {"type_id", type_id}}}}; };
  add(single, before, 0);
  single.push_back(seq("A", 0));
  add(single, after, 0);
  add(pair, before, 0);
  pair.push_back(seq("A", 0));
  add(pair, after, 0);
  add(pair, before, 1);
  pair.push_back(seq("B", 1));
  add(pair, after, 1);
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}};
}

// HF's SentencePiece extractor (transformers' generate_merges with scores): for every piece,
// every split into two vocabulary pieces (at character boundaries) is a merge; merges are
// ordered by the merged piece's score, then the left part's length, then the right part's
// (all descending, lengths in characters), ties kept in vocabulary order of the merged piece,
// then of the left and right ids. Pieces are looked up by the id they map to (the last one
// when a piece repeats); a repeated piece is visited once, at its first position.
std::vector<std::pair<int32_t, int32_t>> spm_merges(const std::vector<std::string_view>& tokens,
                                                    const std::vector<float>& scores) {
  std::unordered_map<std::string_view, int32_t> id_of;
  id_of.reserve(tokens.size() * 2);
  for (size_t i = 0; i < tokens.size(); ++i) id_of[tokens[i]] = static_cast<int32_t>(i);
  struct M {
    float score;
    uint32_t len_l, len_r;
    uint32_t order;  // first position of the merged piece
    int32_t l, r;
  };
  std::vector<M> ms;
  ms.reserve(tokens.size() * 2);
  std::unordered_map<std::string_view, bool> visited;
  visited.reserve(tokens.size() * 2);
  std::vector<size_t> cuts;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string_view t = tokens[i];
    if (t.size() < 2) continue;
    if (!visited.emplace(t, true).second) continue;
    cuts.clear();
    for (size_t k = 0; k < t.size();) {
      k += std::min(utf8_len(static_cast<unsigned char>(t[k])), t.size() - k);
      cuts.push_back(k);
    }
    const size_t n_chars = cuts.size();
    if (n_chars < 2) continue;
    const float score = scores[id_of[t]];
    const size_t first = ms.size();
    for (size_t c = 0; c + 1 < n_chars; ++c) {
      auto l = id_of.find(t.substr(0, cuts[c]));
      if (l == id_of.end()) continue;
      auto r = id_of.find(t.substr(cuts[c]));
      if (r == id_of.end()) continue;
      ms.push_back({score, static_cast<uint32_t>(c + 1), static_cast<uint32_t>(n_chars - c - 1),
                    static_cast<uint32_t>(i), l->second, r->second});
    }
    std::sort(ms.begin() + first, ms.end(), [](const M& a, const M& b) { return std::pair{a.l, a.r} < std::pair{b.l, b.r}; });
  }
  std::stable_sort(ms.begin(), ms.end(), [](const M& a, const M& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.len_l != b.len_l) return a.len_l > b.len_l;
    return a.len_r > b.len_r;
  });
  std::vector<std::pair<int32_t, int32_t>> out;
  out.reserve(ms.size());
  for (const M& m : ms) out.emplace_back(m.l, m.r);
  return out;
}

Result<int64_t> token_id(const GgufFile& f, const char* key, size_t n_tokens) {
  NB_ASSIGN_OR_RETURN(int64_t id, f.get_int(key));
  if (id < 0 || static_cast<size_t>(id) >= n_tokens)
    return Status::invalid("{}: {} {} is not a token", f.name(), key, id);
  return id;
}

// The tokenizer.json of HF's LlamaConverter: BPE with byte_fallback over all pieces, merges from
// scores, normalizer Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer, and a decoder undoing
// both; control (and unknown) pieces are special added tokens, user-defined ones plain added
// tokens, both matched on the raw text as llama.cpp does.
Result<std::string> llama_tokenizer_json(const GgufFile& f) {
  const std::string where = f.name();
  NB_ASSIGN_OR_RETURN(std::vector<std::string_view> tokens, f.get_string_array("tokenizer.ggml.tokens"));
  const size_t n = tokens.size();
  std::vector<float> scores(n, 0.0f);
  if (f.has("tokenizer.ggml.scores")) {
    NB_ASSIGN_OR_RETURN(scores, f.get_float_array("tokenizer.ggml.scores"));
    if (scores.size() != n)
      return Status::invalid("{}: tokenizer.ggml.scores has {} entries for {} tokens", where, scores.size(), n);
  }
  std::vector<int64_t> types(n, 1);
  if (f.has("tokenizer.ggml.token_type")) {
    NB_ASSIGN_OR_RETURN(types, f.get_int_array("tokenizer.ggml.token_type"));
    if (types.size() != n)
      return Status::invalid("{}: tokenizer.ggml.token_type has {} entries for {} tokens", where, types.size(), n);
  }
  auto flag = [&](const char* key, bool dflt) -> Result<bool> {
    if (!f.has(key)) return dflt;
    return f.get_bool(key);
  };
  NB_ASSIGN_OR_RETURN(bool add_space_prefix, flag("tokenizer.ggml.add_space_prefix", true));
  NB_ASSIGN_OR_RETURN(bool add_bos, flag("tokenizer.ggml.add_bos_token", true));  // llama.cpp's SPM default
  NB_ASSIGN_OR_RETURN(bool add_eos, flag("tokenizer.ggml.add_eos_token", false));

  json unk = nullptr;
  if (f.has("tokenizer.ggml.unknown_token_id")) {
    NB_ASSIGN_OR_RETURN(int64_t id, token_id(f, "tokenizer.ggml.unknown_token_id", n));
    unk = std::string(tokens[id]);
  } else if (auto it = std::find(types.begin(), types.end(), 2); it != types.end()) {
    unk = std::string(tokens[it - types.begin()]);
  }

  json vocab = json::object();
  json added = json::array();
  for (size_t i = 0; i < n; ++i) {
    const std::string t(tokens[i]);
    vocab[t] = i;
    // llama.cpp token types: 2 unknown, 3 control (special), 4 user-defined (added, not special).
    if (types[i] == 2 || types[i] == 3 || types[i] == 4)
      added.push_back({{"id", i}, {"content", t}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                       {"normalized", false}, {"special", types[i] != 4}});
  }
  json merge_list = json::array();
  for (const auto& [l, r] : spm_merges(tokens, scores))
    merge_list.push_back(json::array({std::string(tokens[l]), std::string(tokens[r])}));

  std::vector<std::pair<std::string, int64_t>> before, after;
  if (add_bos && f.has("tokenizer.ggml.bos_token_id")) {
    NB_ASSIGN_OR_RETURN(int64_t id, token_id(f, "tokenizer.ggml.bos_token_id", n));
    before.emplace_back(std::string(tokens[id]), id);
  }
  if (add_eos && f.has("tokenizer.ggml.eos_token_id")) {
    NB_ASSIGN_OR_RETURN(int64_t id, token_id(f, "tokenizer.ggml.eos_token_id", n));
    after.emplace_back(std::string(tokens[id]), id);
  }
  json post = before.empty() && after.empty() ? json(nullptr) : template_post(before, after);

  json replace_space = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpace}};
  json normalizer = add_space_prefix
                        ? json{{"type", "Sequence"},
                               {"normalizers", {{{"type", "Prepend"}, {"prepend", kSpace}}, replace_space}}}
                        : replace_space;
  json decoders = {{{"type", "Replace"}, {"pattern", {{"String", kSpace}}}, {"content", " "}},
                   {{"type", "ByteFallback"}},
                   {{"type", "Fuse"}}};
  if (add_space_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});

  json tj = {{"version", "1.0"},
             {"truncation", nullptr},
             {"padding", nullptr},
             {"added_tokens", added},
             {"normalizer", normalizer},
             {"pre_tokenizer", nullptr},
             {"post_processor", post},
             {"decoder", {{"type", "Sequence"}, {"decoders", decoders}}},
             {"model",
              {{"type", "BPE"},
               {"dropout", nullptr},
               {"unk_token", unk},
               {"continuing_subword_prefix", nullptr},
               {"end_of_word_suffix", nullptr},
               {"fuse_unk", true},
               {"byte_fallback", true},
               {"ignore_merges", false},
               {"vocab", vocab},
               {"merges", merge_list}}}};
  return tj.dump();
}

}  // namespace

Result<std::string> gguf_tokenizer_json(const GgufFile& f) {
  const std::string where = f.name();
  NB_ASSIGN_OR_RETURN(std::string_view model, f.get_string("tokenizer.ggml.model"));
  if (model == "llama") return llama_tokenizer_json(f);
  if (model != "gpt2")
    return Status::unsupported("{}: tokenizer.ggml.model '{}' is not supported (gpt2, llama)", where,
                               std::string(model));
  std::string pre = "default";
  if (f.has("tokenizer.ggml.pre")) {
    NB_ASSIGN_OR_RETURN(std::string_view p, f.get_string("tokenizer.ggml.pre"));
    pre = std::string(p);
  }
  NB_ASSIGN_OR_RETURN(auto pre_tok, pre_tokenizer_for(pre, where));
  NB_ASSIGN_OR_RETURN(std::vector<std::string_view> tokens, f.get_string_array("tokenizer.ggml.tokens"));
  NB_ASSIGN_OR_RETURN(std::vector<std::string_view> merges, f.get_string_array("tokenizer.ggml.merges"));
  std::vector<int64_t> types(tokens.size(), 1);
  if (f.has("tokenizer.ggml.token_type")) {
    NB_ASSIGN_OR_RETURN(types, f.get_int_array("tokenizer.ggml.token_type"));
    if (types.size() != tokens.size())
      return Status::invalid("{}: tokenizer.ggml.token_type has {} entries for {} tokens", where, types.size(),
                             tokens.size());
  }

  json vocab = json::object();
  json added = json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string t(tokens[i]);
    vocab[t] = i;
    // llama.cpp token types: 3 = control (special), 4 = user-defined (added, not special).
    if (types[i] == 3 || types[i] == 4)
      added.push_back({{"id", i}, {"content", t}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                       {"normalized", types[i] == 4}, {"special", types[i] == 3}});
  }
  json merge_list = json::array();
  for (auto m : merges) merge_list.push_back(std::string(m));

  json post = nullptr;
  bool add_bos = false;
  if (f.has("tokenizer.ggml.add_bos_token")) {
    NB_ASSIGN_OR_RETURN(add_bos, f.get_bool("tokenizer.ggml.add_bos_token"));
  }
  if (add_bos && f.has("tokenizer.ggml.bos_token_id")) {
    NB_ASSIGN_OR_RETURN(int64_t bos, f.get_int("tokenizer.ggml.bos_token_id"));
    if (bos < 0 || static_cast<size_t>(bos) >= tokens.size())
      return Status::invalid("{}: tokenizer.ggml.bos_token_id {} is not a token", where, bos);
    const std::string b(tokens[bos]);
    post = {{"type", "TemplateProcessing"},
            {"single", {{{"SpecialToken", {{"id", b}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
            {"pair",
             {{{"SpecialToken", {{"id", b}, {"type_id", 0}}}},
              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
              {{"SpecialToken", {{"id", b}, {"type_id", 1}}}},
              {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
            {"special_tokens", {{b, {{"id", b}, {"ids", {bos}}, {"tokens", {b}}}}}}};
  }

  json tj = {{"version", "1.0"},
             {"truncation", nullptr},
             {"padding", nullptr},
             {"added_tokens", added},
             {"normalizer", pre == "qwen2" ? json{{"type", "NFC"}} : json(nullptr)},
             {"pre_tokenizer", pre_tok.first},
             {"post_processor", post},
             {"decoder", byte_level(true)},
             {"model",
              {{"type", "BPE"},
               {"dropout", nullptr},
               {"unk_token", nullptr},
               {"continuing_subword_prefix", nullptr},
               {"end_of_word_suffix", nullptr},
               {"fuse_unk", false},
               {"byte_fallback", false},
               {"ignore_merges", pre_tok.second},
               {"vocab", vocab},
               {"merges", merge_list}}}};
  return tj.dump();
}

Result<Tokenizer> tokenizer_from_gguf(const GgufFile& f) {
  NB_ASSIGN_OR_RETURN(std::string text, gguf_tokenizer_json(f));
  auto t = Tokenizer::from_json(text);
  if (!t) return t.status().with_context(f.name() + ": tokenizer: ");
  return t;
}

}  // namespace nibble
