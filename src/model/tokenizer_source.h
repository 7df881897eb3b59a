#pragma once
#include <string>

#include "tokenizer/spec.h"

namespace cc {

// Reads just a tokenizer from any file that carries one: a GGUF file (also vocab-only ones), a
// Hugging Face folder or tokenizer.json, or a llama2.c tokenizer.bin (whose vocabulary size
// `llama2c_vocab` must then be given, as the file does not store it).
TokenizerSpec load_tokenizer_spec(const std::string& path, int64_t llama2c_vocab = 0);

}  // namespace cc
