// dpctl's command groups. Each Add* registers its subcommands on `app`; a
// command's callback runs it and stores the process exit code in *exit_code.
#pragma once

#include "CLI/CLI.hpp"
#include "controller/cli/cli_context.h"

namespace dpr::cli {

void AddTlsCommands(CLI::App& app, GlobalOptions* global, int* exit_code);
void AddStatusCommand(CLI::App& app, GlobalOptions* global, int* exit_code);
void AddSiteCommands(CLI::App& app, GlobalOptions* global, int* exit_code);

// Prints "dpctl: <message>" to stderr and returns kExitFailure (or kExitUsage
// for InvalidArgument, which is the caller's mistake).
int ReportError(const absl::Status& status);

}  // namespace dpr::cli
