// Decoders (token strings -> text, HF `decoders`) and post-processors (ids -> ids with special
// tokens added, HF `processors`, single sequences only).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/regex.h"

namespace nibble::tok {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Rewrites the list of token strings; the decoded text is their concatenation.
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};
using DecoderPtr = std::shared_ptr<const Decoder>;

DecoderPtr make_byte_level_decoder();  // byte-level alphabet -> bytes, lossy UTF-8
DecoderPtr make_metaspace_decoder(std::string replacement, PrependScheme scheme);
DecoderPtr make_replace_decoder(std::string literal, std::optional<Regex> regex,
                                std::string content);
DecoderPtr make_byte_fallback_decoder();  // runs of <0xHH> tokens -> UTF-8 text
DecoderPtr make_fuse_decoder();           // all tokens -> one
DecoderPtr make_strip_decoder(std::string content, size_t start, size_t stop);
DecoderPtr make_bpe_suffix_decoder(std::string suffix);  // HF BPEDecoder ("</w>" -> " ")
DecoderPtr make_sequence_decoder(std::vector<DecoderPtr> parts);

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void process(std::vector<int32_t>& ids, bool add_special_tokens) const = 0;
};
using PostProcessorPtr = std::shared_ptr<const PostProcessor>;

// One element of a TemplateProcessing "single" template: the sequence itself ($A), or the
// ids of a special token.
struct TemplateItem {
  bool is_sequence = false;
  std::vector<int32_t> ids;
};
PostProcessorPtr make_template_post_processor(std::vector<TemplateItem> single);
PostProcessorPtr make_noop_post_processor();  // ByteLevel: only changes offsets
// RobertaProcessing / BertProcessing for a single sequence: cls ids sep.
PostProcessorPtr make_wrap_post_processor(int32_t cls, int32_t sep);
PostProcessorPtr make_sequence_post_processor(std::vector<PostProcessorPtr> parts);

}  // namespace nibble::tok
