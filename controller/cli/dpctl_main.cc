// dpctl: the admin CLI. Exit codes: 0 success, 1 the operation failed,
// 2 usage error.
#include <cstdio>

#include "CLI/CLI.hpp"
#include "controller/cli/cli_context.h"
#include "controller/cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"dpctl: reassign distribution points to a new site without resending content"};
  // Global options (-o, --controller, ...) may follow the subcommand; new
  // subcommands inherit this.
  app.fallthrough();
  app.require_subcommand(1);
  dpr::cli::GlobalOptions global;
  int exit_code = dpr::cli::kExitOk;
  dpr::cli::AddGlobalOptions(app, &global);
  dpr::cli::AddTlsCommands(app, &global, &exit_code);
  dpr::cli::AddStatusCommand(app, &global, &exit_code);
  dpr::cli::AddSiteCommands(app, &global, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return dpr::cli::kExitUsage;
  }
  return exit_code;
}
