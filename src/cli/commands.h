// Each subcommand registers its options on the CLI11 app and returns the function that runs it.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace cc::cli {

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
