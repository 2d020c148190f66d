#include "common/grpc/daemon_reload.h"

#include "absl/strings/str_join.h"
#include "common/grpc/grpc_log.h"
#include "common/log/logging.h"

namespace dpr {

void ApplyReloadedConfig(DaemonConfig* running, const absl::StatusOr<DaemonConfig>& fresh_daemon,
                         const std::vector<std::string>& other_changed) {
  if (!fresh_daemon.ok()) {
    SPDLOG_ERROR("configuration not reloaded, the running one stays: {}",
                 std::string(fresh_daemon.status().message()));
    return;
  }
  std::vector<std::string> changed = ChangedDaemonKeys(*running, *fresh_daemon);
  std::vector<std::string> later = other_changed;
  for (const std::string& key : changed) {
    if (key != "log_level") {
      later.push_back(key);
      continue;
    }
    auto level = ParseLogLevel(fresh_daemon->log_level);
    if (!level.ok()) {
      SPDLOG_ERROR("log_level not changed: {}", std::string(level.status().message()));
      continue;
    }
    spdlog::set_level(*level);
    RouteGrpcLogsToSpdlog(*level);
    SPDLOG_WARN("log level now {} (was {})", fresh_daemon->log_level, running->log_level);
    running->log_level = fresh_daemon->log_level;
  }
  if (!later.empty()) {
    SPDLOG_WARN("configuration changed ({}): takes effect at the next restart",
                absl::StrJoin(later, ", "));
  } else if (changed.empty()) {
    SPDLOG_INFO("configuration re-read: nothing changed");
  }
}

}  // namespace dpr
