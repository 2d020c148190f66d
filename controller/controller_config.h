// dp-controller's settings: the shared daemon ones plus the job runner's.
#pragma once

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "common/config/daemon_config.h"

namespace dpr::controller {

struct ControllerConfig {
  DaemonConfig daemon;
  // At most this many reassignment jobs run at once (the real
  // DPUpgradeThreadLimit); the rest queue.
  int64_t max_jobs = 50;
  // distmgr's inbox is also scanned this often, besides inotify.
  int64_t inbox_scan_seconds = 5;
  // A broken conversion stream is retried this many times, with backoff.
  int64_t convert_attempts = 3;
  // gRPC keepalive towards agents: a stalled agent is noticed within about
  // the sum of the two.
  int64_t agent_keepalive_seconds = 20;
  int64_t agent_keepalive_timeout_seconds = 10;
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
