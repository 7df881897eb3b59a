// cacheclip command-line frontend. Errors from lower layers (cc::Error) become one line on
// stderr and exit code 1; usage errors exit with CLI11's code and message.
#include <cstdio>
#include <cstdlib>
#include <map>

#include "base/error.h"
#include "base/openmp_env.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  // Never let an OpenMP team spin-wait (base/openmp_env.h): libgomp has read its environment
  // before main() runs, so this re-executes the program once with OMP_WAIT_POLICY=PASSIVE
  // unless the user set a value.
  cc::ensure_passive_openmp(argv);

  CLI::App app{"cacheclip: fast RAG prefill on CPUs by reusing chunk KV caches"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "cacheclip 0.1.0");
  const std::map<std::string, cc::cli::Runner> runners = {
      {"inspect", cc::cli::add_inspect(app)},
      {"tokenize", cc::cli::add_tokenize(app)},
      {"make-model", cc::cli::add_make_model(app)},
      {"convert", cc::cli::add_convert(app)},
      {"generate", cc::cli::add_generate(app)},
      {"bench", cc::cli::add_bench(app)},
      {"rag", cc::cli::add_rag(app)},
      {"compare", cc::cli::add_compare(app)},
      {"ask", cc::cli::add_ask(app)},
      {"precompute", cc::cli::add_precompute(app)},
      {"topology", cc::cli::add_topology(app)},
      {"devices", cc::cli::add_devices(app)},
      {"eval", cc::cli::add_eval(app)},
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto* sub : app.get_subcommands()) return runners.at(sub->get_name())();
  } catch (const cc::Error& e) {
    std::fprintf(stderr, "cacheclip: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "cacheclip: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {  // a library error that escaped a boundary: still one line
    std::fprintf(stderr, "cacheclip: error: %s\n", e.what());
    return 1;
  }
  return 1;
}
