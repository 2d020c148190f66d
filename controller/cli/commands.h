// dpctl's command groups. Each Add* registers its subcommands on `app`; a
// command's callback runs it and stores the process exit code in *exit_code.
#pragma once

#include <string_view>

#include "CLI/CLI.hpp"
#include "controller/cli/cli_context.h"
#include "grpcpp/support/status.h"

namespace dpr::cli {

void AddTlsCommands(CLI::App& app, GlobalOptions* global, int* exit_code);
void AddStatusCommand(CLI::App& app, GlobalOptions* global, int* exit_code);
void AddSiteCommands(CLI::App& app, GlobalOptions* global, int* exit_code);

// Prints "dpctl: <message>" to stderr and returns kExitFailure (or kExitUsage
// for InvalidArgument, which is the caller's mistake).
int ReportError(const absl::Status& status);

// A failed call to the controller as one line: what failed, why, and for
// the usual cause (nothing reachable) what to check.
absl::Status RpcError(std::string_view what, const grpc::Status& rpc);

}  // namespace dpr::cli
