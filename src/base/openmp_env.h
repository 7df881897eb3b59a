// Idle OpenMP threads must sleep, not spin: on shared 2-core machines a busy-waiting team was
// measured slowing a neighbour ~30x, and a team with more threads than its CPUs spins away whole
// time slices at every barrier (an eval with -t 2 beside the aux model ran 20 s instead of 0.6 s).
//
// libgomp reads OMP_WAIT_POLICY once, while the library loads, before main() runs, so a setenv()
// in main() is too late: without the variable libgomp spins 300,000 rounds (GOMP_SPINCOUNT)
// before each sleep. A program calls this first thing in main(): when the variable is unset it
// sets OMP_WAIT_POLICY=PASSIVE and re-executes itself (/proc/self/exe, same argv) once, so the
// new image's libgomp starts passive. A value the user set, ACTIVE included, is kept.
#pragma once

namespace cc {

// Returns only when nothing had to change (or the re-exec failed: then a warning on stderr and
// the program runs on with libgomp's default).
void ensure_passive_openmp(char** argv);

}  // namespace cc
