// What every dpctl command shares: the global options, resolved as
// defaults < config file < environment (DPCTL_*) < flags, and the way to
// reach the controller.
#pragma once

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "dpreassign/v1/admin.grpc.pb.h"

namespace dpr::cli {

enum class OutputFormat { kTable, kJson };

struct GlobalOptions {
  std::string config_path;
  std::string controller = "127.0.0.1:9443";
  std::string cert;
  std::string key;
  std::string ca;
  std::string tls_server_name;  // verify the controller's certificate against this name
  std::string output = "table";
};

void AddGlobalOptions(CLI::App& app, GlobalOptions* options);
// Fills options not given by flag or environment from the config file.
absl::Status ApplyConfigFile(const CLI::App& app, GlobalOptions* options);
absl::StatusOr<OutputFormat> ParseOutput(const std::string& text);

// A stub for the admin API over mutual TLS with the admin certificate.
absl::StatusOr<std::unique_ptr<dpreassign::v1::AdminService::Stub>> ConnectToController(
    const GlobalOptions& options);

// Exit codes (INTERFACES.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

}  // namespace dpr::cli
