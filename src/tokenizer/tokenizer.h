// nibble::Tokenizer: text <-> token ids with the same results as HuggingFace `tokenizers`
// for BPE tokenizer.json files (byte-level like Llama 3 / Qwen / GPT-2, and SentencePiece-style
// with byte_fallback like Gemma). Design and the exact behaviours: docs/tokenizer.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "tokenizer/added_vocab.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"

namespace nibble {

class Tokenizer {
 public:
  // The pipeline, each part optional except the model. The GGUF loader builds one of these.
  struct Parts {
    tok::NormalizerPtr normalizer;
    tok::PreTokenizerPtr pre_tokenizer;
    std::shared_ptr<const tok::BpeModel> model;
    tok::PostProcessorPtr post_processor;
    tok::DecoderPtr decoder;
    std::vector<tok::AddedToken> added_tokens;
  };

  // `path` is a tokenizer.json file or a folder holding one (a model folder).
  static Result<Tokenizer> from_json_file(const std::string& path);
  static Result<Tokenizer> from_json(std::string_view json);
  static Result<Tokenizer> from_parts(Parts parts);

  // Token ids of `text`, as HF Tokenizer.encode(text, add_special_tokens=...).ids. Invalid
  // UTF-8 is first repaired with U+FFFD per maximal invalid subsequence (from_utf8_lossy).
  // parse_special=false leaves special added tokens written in the text as plain text (HF
  // encode_special_tokens=True): use it for untrusted user text in chat prompts.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens,
                              bool parse_special = true) const;

  // Text of `ids`, as HF Tokenizer.decode(ids, skip_special_tokens=...). Unknown ids are
  // skipped. Always valid UTF-8.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  // Added tokens first, then the model vocab (as HF).
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;  // "" when the id is unknown
  // Size of the id space: max id + 1 over the model vocab and the added tokens.
  size_t vocab_size() const;
  // True for added tokens marked special (<|eot_id|>, <bos>, ...).
  bool is_special(int32_t id) const;
  const std::vector<tok::AddedToken>& added_tokens() const;
  const Parts& parts() const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// Incremental detokenization for generation: feed ids one at a time, get back the text they
// add, held back while it would end in an incomplete character (a byte-level or <0xHH> token
// that is half of a UTF-8 sequence). The concatenated output equals decode(all ids) whenever
// that does not end in U+FFFD. Decoding a small window of previous tokens keeps context-sensitive
// decoders right (Metaspace drops the space of the first token only; ByteLevel joins bytes).
class DecodeStream {
 public:
  DecodeStream(const Tokenizer& tok, bool skip_special_tokens)
      : tok_(tok), skip_special_(skip_special_tokens) {}
  // The new text made complete by `id` (often empty for partial characters).
  std::string step(int32_t id);

 private:
  Tokenizer tok_;
  bool skip_special_;
  std::vector<int32_t> ids_;  // window: [prefix_start_, end) of the ids fed so far
  size_t prefix_start_ = 0;   // first id of the context window in ids_
  size_t read_index_ = 0;     // ids before this are already emitted
};

}  // namespace nibble
