// llama2.c tokenizer.bin -> TokenizerSpec.
#include <cmath>

#include "base/error.h"
#include "base/mapped_file.h"
#include "tokenizer/tokenizer_io.h"
#include "tokenizer/unicode.h"

namespace cc {

TokenizerSpec tokenizer_from_llama2c_bytes(const uint8_t* data, size_t size, int32_t vocab_size,
                                           const std::string& name) {
  if (vocab_size < 3) {
    fail(name, ": vocab_size ", vocab_size, " is too small for a llama2.c tokenizer (needs ",
         "<unk>, <s>, </s>)");
  }
  // Each token needs at least 8 bytes (score + length), so a larger vocab cannot fit.
  if (static_cast<uint64_t>(vocab_size) > size / 8 + 1) {
    fail(name, ": truncated: ", size, " bytes cannot hold ", vocab_size, " tokens (vocab_size mismatch?)");
  }
  ByteReader r(data, size, name);
  const auto max_len = r.read<int32_t>("max_token_length");
  if (max_len <= 0 || max_len > (1 << 20)) {
    fail(name, ": max_token_length ", max_len, " is not in [1, 1048576]");
  }
  TokenizerSpec s;
  s.kind = TokenizerKind::SPM;
  s.pre = "default";
  s.tokens.reserve(static_cast<size_t>(vocab_size));
  s.scores.reserve(static_cast<size_t>(vocab_size));
  s.types.reserve(static_cast<size_t>(vocab_size));
  for (int32_t i = 0; i < vocab_size; ++i) {
    if (r.remaining() == 0) {
      fail(name, ": truncated: the file ends after ", i, " tokens but vocab_size is ", vocab_size);
    }
    const auto score = r.read<float>("token score");
    const auto len = r.read<int32_t>("token length");
    if (len < 0 || len > max_len) {
      fail(name, ": token ", i, " has length ", len, " outside [0, max_token_length=", max_len,
           "] at offset ", r.offset() - 4);
    }
    if (std::isnan(score)) fail(name, ": token ", i, " has a NaN score");
    const uint8_t* p = r.take(static_cast<size_t>(len), "token bytes");
    std::string piece(reinterpret_cast<const char*>(p), static_cast<size_t>(len));
    TokenType type = TokenType::Normal;
    if (i == 0) {
      type = TokenType::Unknown;
    } else if (i == 1 || i == 2) {
      type = TokenType::Control;
      if (piece == "\n<s>\n") piece = "<s>";
      if (piece == "\n</s>\n") piece = "</s>";
    } else if (tok::parse_byte_token(piece) >= 0) {
      type = TokenType::Byte;
    } else {
      piece = tok::replace_all(piece, " ", tok::kSpmSpace);
    }
    s.tokens.push_back(std::move(piece));
    s.scores.push_back(score);
    s.types.push_back(type);
  }
  if (r.remaining() != 0) {
    fail(name, ": ", r.remaining(), " trailing bytes after ", vocab_size, " tokens (vocab_size mismatch?)");
  }
  s.unk_id = 0;
  s.bos_id = 1;
  s.eos_id = 2;
  s.add_bos = true;
  s.add_space_prefix = true;
  return s;
}

TokenizerSpec tokenizer_from_llama2c(const std::string& path, int32_t vocab_size) {
  auto file = MappedFile::open(path);
  return tokenizer_from_llama2c_bytes(file->data(), file->size(), vocab_size, path);
}

}  // namespace cc
