// Single pipeline components from their tokenizer.json objects (e.g. the value of
// "pre_tokenizer"), for tests and for loaders that mix JSON pieces with other sources.
#pragma once

#include <string_view>

#include "core/status.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"

namespace nibble::tok {

Result<NormalizerPtr> normalizer_from_json(std::string_view json);
Result<PreTokenizerPtr> pre_tokenizer_from_json(std::string_view json);
Result<DecoderPtr> decoder_from_json(std::string_view json);

}  // namespace nibble::tok
