#include "controller/controller_config.h"

#include "common/status/status_macros.h"
#include "fmt/format.h"

namespace dpr::controller {

void AddControllerFlags(CLI::App& app, ControllerFlags* out) {
  AddDaemonFlags(app, &out->flags.daemon, &out->config_path);
  app.add_option(
      "--max-jobs", out->flags.max_jobs,
      "reassignment jobs run at once, the rest queue (DPUpgradeThreadLimit; default 50)");
  app.add_option("--agent-keepalive-seconds", out->flags.agent_keepalive_seconds,
                 "keepalive ping interval towards agents (default 20)");
  app.add_option("--agent-keepalive-timeout-seconds", out->flags.agent_keepalive_timeout_seconds,
                 "how long an agent may leave a ping unanswered (default 10)");
  app.add_option("--convert-attempts", out->flags.convert_attempts,
                 "tries of a broken conversion stream, with backoff (default 3)");
  app.add_option("--inbox-scan-seconds", out->flags.inbox_scan_seconds,
                 "how often distmgr.box is scanned besides inotify (default 5)");
  AddEnvironmentNames(app, "DPR_CONTROLLER_");
}

absl::StatusOr<ControllerConfig> ResolveControllerConfig(const CLI::App& app,
                                                         const ControllerFlags& given) {
  ControllerConfig config;
  config.daemon.listen = kDefaultControllerListen;
  if (!given.config_path.empty()) {
    ASSIGN_OR_RETURN(TomlConfig file, TomlConfig::Load(given.config_path));
    RETURN_IF_ERROR(ReadDaemonKeys(file, &config.daemon));
    RETURN_IF_ERROR(file.GetInt("jobs.max_running", &config.max_jobs));
    RETURN_IF_ERROR(file.GetInt("jobs.convert_attempts", &config.convert_attempts));
    RETURN_IF_ERROR(file.GetInt("distmgr.inbox_scan_seconds", &config.inbox_scan_seconds));
    RETURN_IF_ERROR(file.GetInt("agents.keepalive_seconds", &config.agent_keepalive_seconds));
    RETURN_IF_ERROR(
        file.GetInt("agents.keepalive_timeout_seconds", &config.agent_keepalive_timeout_seconds));
    RETURN_IF_ERROR(file.CheckNoUnknownKeys());
  }
  ApplyGivenFlags(app, given.flags.daemon, &config.daemon);
  if (app.count("--max-jobs") > 0) config.max_jobs = given.flags.max_jobs;
  if (app.count("--inbox-scan-seconds") > 0) {
    config.inbox_scan_seconds = given.flags.inbox_scan_seconds;
  }
  if (app.count("--agent-keepalive-seconds") > 0) {
    config.agent_keepalive_seconds = given.flags.agent_keepalive_seconds;
  }
  if (app.count("--agent-keepalive-timeout-seconds") > 0) {
    config.agent_keepalive_timeout_seconds = given.flags.agent_keepalive_timeout_seconds;
  }
  if (app.count("--convert-attempts") > 0) config.convert_attempts = given.flags.convert_attempts;
  if (config.agent_keepalive_seconds < 1 || config.agent_keepalive_timeout_seconds < 1) {
    return absl::InvalidArgumentError(
        "agents.keepalive_seconds and keepalive_timeout_seconds must be at least 1");
  }
  if (config.max_jobs < 1 || config.max_jobs > 1000) {
    return absl::InvalidArgumentError(
        fmt::format("jobs.max_running / --max-jobs is {}: give 1 to 1000", config.max_jobs));
  }
  if (config.inbox_scan_seconds < 1 || config.inbox_scan_seconds > 3600) {
    return absl::InvalidArgumentError(
        fmt::format("distmgr.inbox_scan_seconds / --inbox-scan-seconds is {}: give 1 to 3600",
                    config.inbox_scan_seconds));
  }
  if (config.convert_attempts < 1 || config.convert_attempts > 100) {
    return absl::InvalidArgumentError(
        fmt::format("jobs.convert_attempts is {}: give 1 to 100", config.convert_attempts));
  }
  if (config.daemon.data_dir.empty()) {
    return absl::InvalidArgumentError("no data folder: give --data-dir or data_dir in the config");
  }
  config.daemon.data_dir = Absolute(config.daemon.data_dir);
  return config;
}

}  // namespace dpr::controller
