#include "tokenizer/gguf_tokenizer.h"

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

}  // namespace

Result<std::string> gguf_tokenizer_json(const GgufFile& f) {
  const std::string where = f.name();
  NB_ASSIGN_OR_RETURN(std::string_view model, f.get_string("tokenizer.ggml.model"));
  if (model == "llama")  // llama.cpp's SentencePiece tokenizer: tokens + scores, merged greedily by score
    return Status::unsupported(
        "{}: tokenizer.ggml.model 'llama' (SentencePiece: scores, no merges) is not supported yet; "
        "nibble reads only 'gpt2' (byte-level BPE) vocabularies from GGUF",
        where);
  if (model != "gpt2")
    return Status::unsupported("{}: tokenizer.ggml.model '{}' is not supported (gpt2)", where, std::string(model));
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
