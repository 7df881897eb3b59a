#include "model/tokenizer_source.h"

#include <cstring>
#include <filesystem>

#include "base/error.h"
#include "base/mapped_file.h"
#include "formats/gguf.h"
#include "tokenizer/tokenizer_io.h"

namespace cc {

namespace fs = std::filesystem;

TokenizerSpec load_tokenizer_spec(const std::string& path, int64_t llama2c_vocab) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail(path, ": no such file or directory");
  if (fs::is_directory(path, ec)) return tokenizer_from_hf(path);
  if (fs::path(path).filename() == "tokenizer.json") return tokenizer_from_hf(fs::path(path).parent_path().string());
  auto f = MappedFile::open(path);
  if (f->size() >= 4 && std::memcmp(f->data(), "GGUF", 4) == 0) return tokenizer_from_gguf(gguf_read(path).meta);
  if (llama2c_vocab <= 0) {
    fail(path, ": not GGUF or tokenizer.json; for a llama2.c tokenizer.bin give the vocabulary size (--vocab)");
  }
  return tokenizer_from_llama2c(path, static_cast<int32_t>(llama2c_vocab));
}

}  // namespace cc
