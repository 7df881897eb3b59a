// Any byte string either parses as GGUF or throws cc::Error; the tokenizer metadata of a file
// that parses is fed to the tokenizer loader too. Anything else (crash, ASan/UBSan report,
// other exception, huge allocation) is a finding.
#include <cstdint>

#include "base/error.h"
#include "formats/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    cc::GGUFFile g = cc::gguf_parse(data, size, "fuzz.gguf");
    for (const auto& t : g.tensors) {
      volatile uint8_t sink = t.nbytes ? t.data[t.nbytes - 1] : 0;  // must be in bounds
      (void)sink;
    }
    if (g.meta.has("tokenizer.ggml.model")) {
      cc::Tokenizer tok(cc::tokenizer_from_gguf(g.meta));
      auto ids = tok.encode("Hello, world! 123 <|im_start|>", true, true);
      tok.decode(ids);
    }
  } catch (const cc::Error&) {
  }
  return 0;
}
