#include "base/openmp_env.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace cc {

void ensure_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;  // the user's choice, or already re-executed
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
  execv("/proc/self/exe", argv);
  // Called by cacheclip, bench_rag and the test binaries: name the one that runs.
  std::fprintf(stderr,
               "%s: warning: could not restart with OMP_WAIT_POLICY=PASSIVE (%s): idle OpenMP threads "
               "spin before they sleep; set OMP_WAIT_POLICY=PASSIVE in the environment to avoid it\n",
               program_invocation_short_name, std::strerror(errno));
}

}  // namespace cc
