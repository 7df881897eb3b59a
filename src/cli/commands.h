// Each subcommand registers its options on the CLI11 app and returns the function that runs it.
#pragma once
#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>

namespace cc::cli {

// --json output on stdout, indented; bytes that are not UTF-8 (a question typed in Latin-1, a
// byte token cut in half by -n) become U+FFFD instead of failing the whole report.
inline void print_json(const nlohmann::json& j) {
  std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
}

using Runner = std::function<int()>;

Runner add_inspect(CLI::App& app);
Runner add_tokenize(CLI::App& app);
Runner add_make_model(CLI::App& app);
Runner add_convert(CLI::App& app);
Runner add_generate(CLI::App& app);
Runner add_bench(CLI::App& app);
Runner add_rag(CLI::App& app);
Runner add_compare(CLI::App& app);
Runner add_ask(CLI::App& app);
Runner add_precompute(CLI::App& app);
Runner add_topology(CLI::App& app);
Runner add_devices(CLI::App& app);
Runner add_eval(CLI::App& app);

}  // namespace cc::cli
