// dp-agent's settings: the shared daemon ones plus where the library and the
// legacy package folders live.
#pragma once

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "common/config/daemon_config.h"

namespace dpr::agent {

struct AgentConfig {
  DaemonConfig daemon;
  std::string content_root;  // SCCMContentLib is made below it
  std::string legacy_root;   // optional: where ListLegacyPackages looks
};

inline constexpr char kDefaultAgentListen[] = "0.0.0.0:9444";

struct AgentFlags {
  AgentConfig flags;
  std::string config_path;
};

void AddAgentFlags(CLI::App& app, AgentFlags* out);
// defaults < --config file < flags; checks what is required.
absl::StatusOr<AgentConfig> ResolveAgentConfig(const CLI::App& app, const AgentFlags& given);

}  // namespace dpr::agent
