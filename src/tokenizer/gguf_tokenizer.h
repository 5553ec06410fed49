// A Tokenizer from GGUF metadata (tokenizer.ggml.*). The metadata is rewritten as the
// tokenizer.json HuggingFace would have for the same vocabulary, so both paths share one
// implementation; llama.cpp's pre-tokenizer names map to the pre_tokenizer each family ships.
#pragma once

#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

namespace nibble {

// tokenizer.ggml.model "gpt2" (byte-level BPE) with pre "default", "gpt2", "gpt-2", "smollm",
// "llama3"/"llama-bpe"/"llama-v3", "qwen2", "tekken"; tokenizer.ggml.model "llama" (SentencePiece
// BPE: tokens + scores + token_type, merges derived from the scores as HF's converter does,
// byte_fallback, add_space_prefix / add_bos_token / add_eos_token). Anything else: kUnsupported
// naming it.
Result<Tokenizer> tokenizer_from_gguf(const GgufFile& file);

// The tokenizer.json text tokenizer_from_gguf parses (exposed for tests).
Result<std::string> gguf_tokenizer_json(const GgufFile& file);

}  // namespace nibble
