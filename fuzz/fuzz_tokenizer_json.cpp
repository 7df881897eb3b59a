// tokenizer.json (+ an optional tokenizer_config.json after a NUL byte) -> TokenizerSpec ->
// Tokenizer -> encode/decode. Invalid input must end in cc::Error.
#include <cstdint>
#include <cstring>
#include <string_view>

#include "base/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  size_t nul = all.find('\0');
  std::string_view tj = all.substr(0, nul);
  std::string_view cfg = nul == std::string_view::npos ? std::string_view() : all.substr(nul + 1);
  try {
    cc::Tokenizer tok(cc::tokenizer_from_hf_json(tj, cfg, "fuzz/tokenizer.json"));
    auto ids = tok.encode("Hello, world! 123 \xE2\x96\x81 caf\xC3\xA9", true, true);
    tok.decode(ids);
  } catch (const cc::Error&) {
  }
  return 0;
}
