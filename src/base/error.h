// cacheclip error policy (see docs/ARCHITECTURE.md): exceptions with actionable messages at
// I/O, config and request boundaries; always-on CC_ASSERT for internal invariants; nothing is
// thrown from inside kernels or OpenMP regions.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace cc {

// The one exception type crossing layer boundaries. what() is a complete, single-line message
// naming the file/field/value that is wrong.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Concatenate anything streamable into a string: cat("bad size ", n, " in ", path).
template <typename... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(cat(std::forward<Args>(args)...));
}

[[noreturn]] void assert_failed(const char* expr, const char* file, int line);

}  // namespace cc

// Internal invariant: always on, also in Release. Not for validating user input (use cc::fail).
#define CC_ASSERT(expr) \
  ((expr) ? (void)0 : ::cc::assert_failed(#expr, __FILE__, __LINE__))
