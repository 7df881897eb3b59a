#include <cstdint>

#include "base/error.h"
#include "formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    cc::SafetensorsFile f = cc::safetensors_parse(data, size, "fuzz.safetensors");
    for (const auto& t : f.tensors) {
      volatile uint8_t sink = t.nbytes ? t.data[t.nbytes - 1] : 0;
      (void)sink;
    }
  } catch (const cc::Error&) {
  }
  return 0;
}
