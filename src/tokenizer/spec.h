// The format-independent description of a tokenizer. Loaders (GGUF tokenizer.ggml.*, HF
// tokenizer.json + tokenizer_config.json, llama2.c tokenizer.bin) fill it; Tokenizer is built
// from it; the model writer serialises it back. Field names follow GGUF's tokenizer.ggml.* keys.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace cc {

enum class TokenizerKind {
  BPE,  // byte-level BPE (GPT-2 style): GGUF tokenizer.ggml.model = "gpt2"
  SPM,  // SentencePiece-style BPE with byte fallback: GGUF "llama", llama2.c tokenizer.bin
};

// GGUF token types (tokenizer.ggml.token_type), as llama.cpp defines them.
enum class TokenType : int32_t {
  Undefined = 0, Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6,
};

struct TokenizerSpec {
  TokenizerKind kind = TokenizerKind::BPE;
  std::string pre = "default";           // pre-tokenizer name (tokenizer.ggml.pre)
  std::vector<std::string> tokens;       // id -> piece (byte-level pieces for BPE, "▁" for SPM)
  std::vector<float> scores;             // SPM merge scores (empty for BPE)
  std::vector<TokenType> types;          // id -> type (Normal when the source has none)
  std::vector<std::string> merges;       // BPE merges "a b", highest priority first
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;  // -1 = none
  std::vector<int32_t> eot_ids;          // extra end-of-turn ids (e.g. <|im_end|>, <|eot_id|>)
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;         // SPM "dummy prefix"
  std::string chat_template;             // Jinja text as shipped with the model, may be empty

  size_t size() const { return tokens.size(); }
};

}  // namespace cc
