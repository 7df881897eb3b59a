#include "base/error.h"

#include <cstdio>
#include <cstdlib>

namespace cc {

void assert_failed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "cacheclip: internal error: assertion '%s' failed at %s:%d\n", expr, file,
               line);
  std::abort();
}

}  // namespace cc
