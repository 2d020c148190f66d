// dp-controller's settings: the shared daemon ones (more arrive with the site
// database and the job runner).
#pragma once

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "common/config/daemon_config.h"

namespace dpr::controller {

struct ControllerConfig {
  DaemonConfig daemon;
};

inline constexpr char kDefaultControllerListen[] = "0.0.0.0:9443";

struct ControllerFlags {
  ControllerConfig flags;
  std::string config_path;
};

void AddControllerFlags(CLI::App& app, ControllerFlags* out);
absl::StatusOr<ControllerConfig> ResolveControllerConfig(const CLI::App& app,
                                                         const ControllerFlags& given);

}  // namespace dpr::controller
