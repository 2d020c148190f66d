// dp-agent's local subcommands, run with no controller: `convert` (offline
// conversion, benchmarks) and `verify`. Same importer and library code as
// the daemon.
#pragma once

#include "CLI/CLI.hpp"

namespace dpr::agent {

// Registers `convert` and `verify` on `app`; the chosen one stores its exit
// code in *exit_code when it runs (0 ok, 1 failure, 2 usage).
void AddLocalCommands(CLI::App& app, int* exit_code);

}  // namespace dpr::agent
