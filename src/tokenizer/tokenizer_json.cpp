// tokenizer.json -> Tokenizer::Parts. Field names and defaults follow HF `tokenizers`
// serialization; anything we do not implement is a Status::unsupported naming it, and anything
// malformed a Status::invalid naming the key, never a crash.
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_json.h"
#include "tokenizer/unicode.h"

namespace nibble {

namespace {

using nlohmann::json;
using namespace tok;

// Typed field access with defaults; wrong types are reported with the key's name.
Result<std::string> get_string(const json& j, const char* key, const std::string& def,
                               bool required = false) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return Status::invalid("missing \"{}\"", key);
    return def;
  }
  if (!it->is_string()) return Status::invalid("\"{}\" must be a string", key);
  return it->get<std::string>();
}

Result<bool> get_bool(const json& j, const char* key, bool def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_boolean()) return Status::invalid("\"{}\" must be a boolean", key);
  return it->get<bool>();
}

Result<int64_t> get_int(const json& j, const char* key, int64_t def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number_integer()) return Status::invalid("\"{}\" must be an integer", key);
  return it->get<int64_t>();
}

Result<const json*> get_array(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return Status::invalid("\"{}\" must be an array", key);
  return &*it;
}

Result<std::string> get_type(const json& j) {
  if (!j.is_object()) return Status::invalid("expected an object, got {}", j.type_name());
  return get_string(j, "type", "", /*required=*/true);
}

// {"String": "..."} or {"Regex": "..."} -> literal or compiled regex.
Status get_pattern(const json& j, std::string& literal, std::optional<Regex>& regex) {
  auto it = j.find("pattern");
  if (it == j.end() || !it->is_object()) return Status::invalid("\"pattern\" must be an object");
  if (auto s = it->find("String"); s != it->end() && s->is_string()) {
    literal = s->get<std::string>();
    if (!utf8_valid(literal)) return Status::invalid("pattern is not valid UTF-8");
    return Status::ok();
  }
  if (auto r = it->find("Regex"); r != it->end() && r->is_string()) {
    auto re = Regex::compile(r->get<std::string>());
    if (!re) return re.status();
    regex = std::move(re.value());
    return Status::ok();
  }
  return Status::invalid("\"pattern\" must hold \"String\" or \"Regex\"");
}

Result<SplitBehavior> get_behavior(const json& j, SplitBehavior def) {
  NB_ASSIGN_OR_RETURN(std::string b, get_string(j, "behavior", ""));
  if (b.empty()) return def;
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  return Status::invalid("unknown split behavior \"{}\"", b);
}

// Metaspace's prepend_scheme, or the older add_prefix_space boolean.
Result<PrependScheme> get_prepend_scheme(const json& j) {
  NB_ASSIGN_OR_RETURN(std::string s, get_string(j, "prepend_scheme", ""));
  if (s.empty()) {
    NB_ASSIGN_OR_RETURN(bool add, get_bool(j, "add_prefix_space", true));
    return add ? PrependScheme::kAlways : PrependScheme::kNever;
  }
  if (s == "always") return PrependScheme::kAlways;
  if (s == "first") return PrependScheme::kFirst;
  if (s == "never") return PrependScheme::kNever;
  return Status::invalid("unknown prepend_scheme \"{}\"", s);
}

// One code point (Metaspace replacement, Strip content, CharDelimiterSplit delimiter).
Result<std::string> get_char(const json& j, const char* key, const std::string& def) {
  NB_ASSIGN_OR_RETURN(std::string s, get_string(j, key, def));
  size_t i = 0;
  if (s.empty() || !utf8_valid(s) || (utf8_next(s, i), i != s.size()))
    return Status::invalid("\"{}\" must be one character", key);
  return s;
}

Result<NormalizerPtr> parse_normalizer(const json& j, int depth);
Result<PreTokenizerPtr> parse_pre_tokenizer(const json& j, int depth);
Result<DecoderPtr> parse_decoder(const json& j, int depth);

// Nesting deeper than this is not a real tokenizer, and would let a hostile file overflow
// the stack.
constexpr int kMaxDepth = 16;

Result<NormalizerPtr> parse_normalizer(const json& j, int depth) {
  if (depth > kMaxDepth) return Status::invalid("normalizers nested too deep");
  NB_ASSIGN_OR_RETURN(std::string type, get_type(j));
  if (type == "NFC") return make_unicode_normalizer(NormForm::kNFC);
  if (type == "NFD") return make_unicode_normalizer(NormForm::kNFD);
  if (type == "NFKC") return make_unicode_normalizer(NormForm::kNFKC);
  if (type == "NFKD") return make_unicode_normalizer(NormForm::kNFKD);
  if (type == "Lowercase") return make_lowercase_normalizer();
  if (type == "StripAccents") return make_strip_accents_normalizer();
  if (type == "Strip") {
    NB_ASSIGN_OR_RETURN(bool l, get_bool(j, "strip_left", true));
    NB_ASSIGN_OR_RETURN(bool r, get_bool(j, "strip_right", true));
    return make_strip_normalizer(l, r);
  }
  if (type == "Prepend") {
    NB_ASSIGN_OR_RETURN(std::string p, get_string(j, "prepend", "", true));
    if (!utf8_valid(p)) return Status::invalid("\"prepend\" is not valid UTF-8");
    return make_prepend_normalizer(std::move(p));
  }
  if (type == "Replace") {
    std::string lit;
    std::optional<Regex> re;
    NB_TRY(get_pattern(j, lit, re));
    NB_ASSIGN_OR_RETURN(std::string content, get_string(j, "content", "", true));
    if (!utf8_valid(content)) return Status::invalid("\"content\" is not valid UTF-8");
    return make_replace_normalizer(std::move(lit), std::move(re), std::move(content));
  }
  if (type == "Sequence") {
    NB_ASSIGN_OR_RETURN(const json* arr, get_array(j, "normalizers"));
    std::vector<NormalizerPtr> parts;
    for (const json& e : *arr) {
      NB_ASSIGN_OR_RETURN(NormalizerPtr p, parse_normalizer(e, depth + 1));
      parts.push_back(std::move(p));
    }
    return make_sequence_normalizer(std::move(parts));
  }
  return Status::unsupported("normalizer type \"{}\" is not supported", type);
}

Result<PreTokenizerPtr> parse_pre_tokenizer(const json& j, int depth) {
  if (depth > kMaxDepth) return Status::invalid("pre-tokenizers nested too deep");
  NB_ASSIGN_OR_RETURN(std::string type, get_type(j));
  if (type == "Split") {
    std::string lit;
    std::optional<Regex> re;
    NB_TRY(get_pattern(j, lit, re));
    NB_ASSIGN_OR_RETURN(SplitBehavior b, get_behavior(j, SplitBehavior::kIsolated));
    NB_ASSIGN_OR_RETURN(bool invert, get_bool(j, "invert", false));
    return make_split_pre_tokenizer(std::move(lit), std::move(re), b, invert);
  }
  if (type == "ByteLevel") {
    NB_ASSIGN_OR_RETURN(bool prefix, get_bool(j, "add_prefix_space", true));
    NB_ASSIGN_OR_RETURN(bool use_regex, get_bool(j, "use_regex", true));
    return make_byte_level_pre_tokenizer(prefix, use_regex);
  }
  if (type == "Metaspace") {
    NB_ASSIGN_OR_RETURN(std::string rep, get_char(j, "replacement", "\xE2\x96\x81"));
    NB_ASSIGN_OR_RETURN(PrependScheme scheme, get_prepend_scheme(j));
    NB_ASSIGN_OR_RETURN(bool split, get_bool(j, "split", true));
    return make_metaspace_pre_tokenizer(std::move(rep), scheme, split);
  }
  if (type == "Digits") {
    NB_ASSIGN_OR_RETURN(bool individual, get_bool(j, "individual_digits", false));
    return make_digits_pre_tokenizer(individual);
  }
  if (type == "Punctuation") {
    NB_ASSIGN_OR_RETURN(SplitBehavior b, get_behavior(j, SplitBehavior::kIsolated));
    return make_punctuation_pre_tokenizer(b);
  }
  if (type == "Whitespace") return make_whitespace_pre_tokenizer();
  if (type == "WhitespaceSplit") return make_whitespace_split_pre_tokenizer();
  if (type == "BertPreTokenizer") return make_bert_pre_tokenizer();
  if (type == "CharDelimiterSplit") {
    NB_ASSIGN_OR_RETURN(std::string d, get_char(j, "delimiter", ""));
    size_t i = 0;
    return make_char_delimiter_pre_tokenizer(utf8_next(d, i));
  }
  if (type == "Sequence") {
    NB_ASSIGN_OR_RETURN(const json* arr, get_array(j, "pretokenizers"));
    std::vector<PreTokenizerPtr> parts;
    for (const json& e : *arr) {
      NB_ASSIGN_OR_RETURN(PreTokenizerPtr p, parse_pre_tokenizer(e, depth + 1));
      parts.push_back(std::move(p));
    }
    return make_sequence_pre_tokenizer(std::move(parts));
  }
  return Status::unsupported("pre-tokenizer type \"{}\" is not supported", type);
}

Result<DecoderPtr> parse_decoder(const json& j, int depth) {
  if (depth > kMaxDepth) return Status::invalid("decoders nested too deep");
  NB_ASSIGN_OR_RETURN(std::string type, get_type(j));
  if (type == "ByteLevel") return make_byte_level_decoder();
  if (type == "ByteFallback") return make_byte_fallback_decoder();
  if (type == "Fuse") return make_fuse_decoder();
  if (type == "Metaspace") {
    NB_ASSIGN_OR_RETURN(std::string rep, get_char(j, "replacement", "\xE2\x96\x81"));
    NB_ASSIGN_OR_RETURN(PrependScheme scheme, get_prepend_scheme(j));
    return make_metaspace_decoder(std::move(rep), scheme);
  }
  if (type == "Replace") {
    std::string lit;
    std::optional<Regex> re;
    NB_TRY(get_pattern(j, lit, re));
    NB_ASSIGN_OR_RETURN(std::string content, get_string(j, "content", "", true));
    return make_replace_decoder(std::move(lit), std::move(re), std::move(content));
  }
  if (type == "Strip") {
    NB_ASSIGN_OR_RETURN(std::string c, get_char(j, "content", " "));
    NB_ASSIGN_OR_RETURN(int64_t start, get_int(j, "start", 0));
    NB_ASSIGN_OR_RETURN(int64_t stop, get_int(j, "stop", 0));
    if (start < 0 || stop < 0) return Status::invalid("Strip decoder: negative start/stop");
    return make_strip_decoder(std::move(c), size_t(start), size_t(stop));
  }
  if (type == "BPEDecoder") {
    NB_ASSIGN_OR_RETURN(std::string suffix, get_string(j, "suffix", "</w>"));
    return make_bpe_suffix_decoder(std::move(suffix));
  }
  if (type == "Sequence") {
    NB_ASSIGN_OR_RETURN(const json* arr, get_array(j, "decoders"));
    std::vector<DecoderPtr> parts;
    for (const json& e : *arr) {
      NB_ASSIGN_OR_RETURN(DecoderPtr p, parse_decoder(e, depth + 1));
      parts.push_back(std::move(p));
    }
    return make_sequence_decoder(std::move(parts));
  }
  return Status::unsupported("decoder type \"{}\" is not supported", type);
}

// A ["token", id] pair of RobertaProcessing / BertProcessing.
Result<int32_t> get_token_pair_id(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_integer())
    return Status::invalid("\"{}\" must be [token, id]", key);
  return (*it)[1].get<int32_t>();
}

Result<PostProcessorPtr> parse_post_processor(const json& j, int depth) {
  if (depth > kMaxDepth) return Status::invalid("post-processors nested too deep");
  NB_ASSIGN_OR_RETURN(std::string type, get_type(j));
  if (type == "ByteLevel") return make_noop_post_processor();
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    NB_ASSIGN_OR_RETURN(int32_t cls, get_token_pair_id(j, "cls"));
    NB_ASSIGN_OR_RETURN(int32_t sep, get_token_pair_id(j, "sep"));
    return make_wrap_post_processor(cls, sep);
  }
  if (type == "TemplateProcessing") {
    NB_ASSIGN_OR_RETURN(const json* single, get_array(j, "single"));
    auto specials = j.find("special_tokens");
    std::vector<TemplateItem> items;
    for (const json& e : *single) {
      if (!e.is_object()) return Status::invalid("TemplateProcessing: bad template piece");
      if (e.contains("Sequence")) {
        items.push_back({true, {}});
        continue;
      }
      auto st = e.find("SpecialToken");
      if (st == e.end() || !st->is_object())
        return Status::invalid("TemplateProcessing: piece is neither Sequence nor SpecialToken");
      NB_ASSIGN_OR_RETURN(std::string name, get_string(*st, "id", "", true));
      if (specials == j.end() || !specials->is_object() || !specials->contains(name))
        return Status::invalid("TemplateProcessing: special token \"{}\" is not defined", name);
      const json& def = (*specials)[name];
      NB_ASSIGN_OR_RETURN(const json* ids, get_array(def, "ids"));
      TemplateItem item;
      for (const json& id : *ids) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
          return Status::invalid("TemplateProcessing: bad id for \"{}\"", name);
        item.ids.push_back(id.get<int32_t>());
      }
      items.push_back(std::move(item));
    }
    return make_template_post_processor(std::move(items));
  }
  if (type == "Sequence") {
    NB_ASSIGN_OR_RETURN(const json* arr, get_array(j, "processors"));
    std::vector<PostProcessorPtr> parts;
    for (const json& e : *arr) {
      NB_ASSIGN_OR_RETURN(PostProcessorPtr p, parse_post_processor(e, depth + 1));
      parts.push_back(std::move(p));
    }
    return make_sequence_post_processor(std::move(parts));
  }
  return Status::unsupported("post-processor type \"{}\" is not supported", type);
}

Result<std::shared_ptr<const BpeModel>> parse_model(const json& j) {
  if (!j.is_object()) return Status::invalid("\"model\" must be an object");
  NB_ASSIGN_OR_RETURN(std::string type, get_string(j, "type", ""));
  if (type.empty() && j.contains("merges")) type = "BPE";  // HF infers BPE from its fields
  if (type != "BPE") return Status::unsupported("model type \"{}\" is not supported (only BPE)", type);
  if (auto d = j.find("dropout"); d != j.end() && !d->is_null()) {
    if (!d->is_number() || d->get<double>() != 0.0)
      return Status::unsupported("BPE dropout is not supported (encoding would be random)");
  }
  BpeOptions opt;
  NB_ASSIGN_OR_RETURN(std::string unk, get_string(j, "unk_token", ""));
  if (auto u = j.find("unk_token"); u != j.end() && u->is_string()) opt.unk_token = unk;
  NB_ASSIGN_OR_RETURN(opt.continuing_subword_prefix, get_string(j, "continuing_subword_prefix", ""));
  NB_ASSIGN_OR_RETURN(opt.end_of_word_suffix, get_string(j, "end_of_word_suffix", ""));
  NB_ASSIGN_OR_RETURN(opt.fuse_unk, get_bool(j, "fuse_unk", false));
  NB_ASSIGN_OR_RETURN(opt.byte_fallback, get_bool(j, "byte_fallback", false));
  NB_ASSIGN_OR_RETURN(opt.ignore_merges, get_bool(j, "ignore_merges", false));

  auto v = j.find("vocab");
  if (v == j.end() || !v->is_object()) return Status::invalid("\"model.vocab\" must be an object");
  std::vector<std::pair<std::string, int32_t>> vocab;
  vocab.reserve(v->size());
  for (auto it = v->begin(); it != v->end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() >= INT32_MAX)
      return Status::invalid("model.vocab: id of '{}' must be a non-negative integer", it.key());
    vocab.emplace_back(it.key(), it.value().get<int32_t>());
  }
  std::vector<std::pair<std::string, std::string>> merges;
  if (auto m = j.find("merges"); m != j.end() && !m->is_null()) {
    if (!m->is_array()) return Status::invalid("\"model.merges\" must be an array");
    merges.reserve(m->size());
    for (const json& e : *m) {
      if (e.is_string()) {
        // "a b": exactly one space (HF rejects anything else as a bad merge).
        const std::string& s = e.get_ref<const std::string&>();
        size_t sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          return Status::invalid("model.merges: \"{}\" is not \"left right\"", s);
        merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
      } else {
        return Status::invalid("model.merges: each merge must be \"a b\" or [\"a\", \"b\"]");
      }
    }
  }
  return BpeModel::build(std::move(vocab), merges, std::move(opt));
}

Result<std::vector<AddedToken>> parse_added_tokens(const json& root) {
  std::vector<AddedToken> out;
  auto a = root.find("added_tokens");
  if (a == root.end() || a->is_null()) return out;
  if (!a->is_array()) return Status::invalid("\"added_tokens\" must be an array");
  for (const json& e : *a) {
    if (!e.is_object()) return Status::invalid("added_tokens: each entry must be an object");
    AddedToken t;
    NB_ASSIGN_OR_RETURN(t.content, get_string(e, "content", "", true));
    NB_ASSIGN_OR_RETURN(int64_t id, get_int(e, "id", -1));
    if (id < 0 || id >= INT32_MAX)
      return Status::invalid("added token '{}': \"id\" must be a non-negative integer", t.content);
    t.id = int32_t(id);
    NB_ASSIGN_OR_RETURN(t.special, get_bool(e, "special", false));
    NB_ASSIGN_OR_RETURN(t.lstrip, get_bool(e, "lstrip", false));
    NB_ASSIGN_OR_RETURN(t.rstrip, get_bool(e, "rstrip", false));
    NB_ASSIGN_OR_RETURN(t.single_word, get_bool(e, "single_word", false));
    NB_ASSIGN_OR_RETURN(t.normalized, get_bool(e, "normalized", true));
    out.push_back(std::move(t));
  }
  return out;
}

// Parses one optional top-level component, prefixing errors with its key.
template <typename T, typename Fn>
Status parse_optional(const json& root, const char* key, T& out, Fn&& fn) {
  auto it = root.find(key);
  if (it == root.end() || it->is_null()) return Status::ok();
  auto r = fn(*it, 0);
  if (!r) return r.status().with_context(std::string(key) + ": ");
  out = std::move(r.value());
  return Status::ok();
}

Result<Tokenizer> parse_root(const json& root) {
  if (!root.is_object()) return Status::invalid("tokenizer.json: top level must be an object");
  Tokenizer::Parts parts;
  auto m = root.find("model");
  if (m == root.end()) return Status::invalid("tokenizer.json: missing \"model\"");
  auto model = parse_model(*m);
  if (!model) return model.status().with_context("tokenizer.json: model: ");
  parts.model = std::move(model.value());
  NB_TRY(parse_optional(root, "normalizer", parts.normalizer, parse_normalizer)
             .with_context("tokenizer.json: "));
  NB_TRY(parse_optional(root, "pre_tokenizer", parts.pre_tokenizer, parse_pre_tokenizer)
             .with_context("tokenizer.json: "));
  NB_TRY(parse_optional(root, "post_processor", parts.post_processor, parse_post_processor)
             .with_context("tokenizer.json: "));
  NB_TRY(parse_optional(root, "decoder", parts.decoder, parse_decoder)
             .with_context("tokenizer.json: "));
  auto added = parse_added_tokens(root);
  if (!added) return added.status().with_context("tokenizer.json: ");
  parts.added_tokens = std::move(added.value());
  return Tokenizer::from_parts(std::move(parts));
}

}  // namespace

Result<Tokenizer> Tokenizer::from_json(std::string_view text) {
  json root = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return Status::invalid("tokenizer.json: not valid JSON");
  try {
    return parse_root(root);
  } catch (const json::exception& e) {
    // The typed getters above cover the expected shapes; this catches the rest (e.g. an id
    // that does not fit in int32) so that a hostile file gives an error, not an abort.
    return Status::invalid("tokenizer.json: {}", e.what());
  }
}

Result<Tokenizer> Tokenizer::from_json_file(const std::string& path) {
  std::error_code ec;
  std::string file = path;
  if (std::filesystem::is_directory(path, ec)) file = (std::filesystem::path(path) / "tokenizer.json").string();
  if (!std::filesystem::exists(file, ec)) return Status::not_found("{}: no such file", file);
  NB_ASSIGN_OR_RETURN(std::string text, read_text_file(file));
  auto t = from_json(text);
  if (!t) return t.status().with_context(file + ": ");
  return t;
}

}  // namespace nibble

namespace nibble::tok {

namespace {

template <typename T, typename Fn>
Result<T> component_from_json(std::string_view text, Fn&& fn) {
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return Status::invalid("not valid JSON");
  try {
    return fn(j, 0);
  } catch (const nlohmann::json::exception& e) {
    return Status::invalid("{}", e.what());
  }
}

}  // namespace

Result<NormalizerPtr> normalizer_from_json(std::string_view json) {
  return component_from_json<NormalizerPtr>(json, parse_normalizer);
}
Result<PreTokenizerPtr> pre_tokenizer_from_json(std::string_view json) {
  return component_from_json<PreTokenizerPtr>(json, parse_pre_tokenizer);
}
Result<DecoderPtr> decoder_from_json(std::string_view json) {
  return component_from_json<DecoderPtr>(json, parse_decoder);
}

}  // namespace nibble::tok
