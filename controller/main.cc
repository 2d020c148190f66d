// dp-controller: the site-server daemon. Parses flags and config, sets up
// logging and the data folder, and serves the admin API until SIGINT/SIGTERM
// (SIGHUP: certificates and configuration read again).
#include <cstdio>

#include "CLI/CLI.hpp"
#include "common/fs/durable_file.h"
#include "common/grpc/daemon_reload.h"
#include "common/grpc/grpc_log.h"
#include "common/grpc/server_runner.h"
#include "common/grpc/validated_tls_files.h"
#include "common/log/logging.h"
#include "common/status/status_macros.h"
#include "controller/agent_client/grpc_agent_client.h"
#include "controller/controller_config.h"
#include "controller/controller_metrics.h"
#include "controller/distmgr/inbox.h"
#include "controller/fault_point.h"
#include "controller/reassign/job_runner.h"
#include "controller/service/admin_service.h"
#include "controller/sitedb/site_store.h"

namespace {

using dpr::controller::ControllerConfig;

// The command line, environment and --config file, read at start and again
// on SIGHUP. --help or a bad command line: at start (exit_code set) printed
// with *exit_code the code to exit with; on SIGHUP an error.
absl::StatusOr<ControllerConfig> ReadConfig(int argc, char** argv, int* exit_code) {
  CLI::App app{"dp-controller: runs distribution-point reassignments for a site"};
  dpr::controller::ControllerFlags flags;
  dpr::controller::AddControllerFlags(app, &flags);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (exit_code != nullptr) {
      const int code = app.exit(e);
      *exit_code = code == 0 ? 0 : 2;
    }
    return absl::InvalidArgumentError(e.what());
  }
  return dpr::controller::ResolveControllerConfig(app, flags);
}

std::vector<std::string> ChangedControllerKeys(const ControllerConfig& a,
                                               const ControllerConfig& b) {
  std::vector<std::string> out;
  if (a.max_jobs != b.max_jobs) out.push_back("jobs.max_running");
  if (a.inbox_scan_seconds != b.inbox_scan_seconds) out.push_back("distmgr.inbox_scan_seconds");
  if (a.convert_attempts != b.convert_attempts) out.push_back("jobs.convert_attempts");
  if (a.agent_keepalive_seconds != b.agent_keepalive_seconds) {
    out.push_back("agents.keepalive_seconds");
  }
  if (a.agent_keepalive_timeout_seconds != b.agent_keepalive_timeout_seconds) {
    out.push_back("agents.keepalive_timeout_seconds");
  }
  return out;
}

absl::Status RunDaemon(const ControllerConfig& config, int argc, char** argv) {
  // Before any thread starts (the TLS watcher, the metrics server, gRPC's):
  // they inherit the mask, so SIGTERM and SIGHUP reach only the serving
  // loop. A thread started earlier could take a SIGHUP and die of it.
  dpr::BlockTerminationSignals();
  const std::string& dir = config.daemon.data_dir;
  RETURN_IF_ERROR(dpr::MakeDirs(dir + "/logs", 0750));
  RETURN_IF_ERROR(dpr::MakeDirs(dir + "/inboxes/distmgr.box", 0750));
  ASSIGN_OR_RETURN(auto level, dpr::ParseLogLevel(config.daemon.log_level));
  RETURN_IF_ERROR(dpr::InitLogging({.file = dir + "/logs/distmgr.log",
                                    .default_component = "SMS_DISTRIBUTION_MANAGER",
                                    .level = level}));
  dpr::RouteGrpcLogsToSpdlog(level);
  ASSIGN_OR_RETURN(auto tls_files, dpr::StartDaemonTls(config.daemon, dpr::Role::kController));
  const dpr::TlsFiles& tls = tls_files->active();
  const dpr::CertInfo& self = tls_files->identity();
  SPDLOG_INFO("dp-controller {} starting as '{}', data folder '{}'", DPR_VERSION, self.common_name,
              dir);
  ASSIGN_OR_RETURN(auto store, dpr::sitedb::OpenSqliteSiteStore(
                                   {.path = dir + "/site.db",
                                    .trace_sql = level <= spdlog::level::debug,
                                    .fault_hook = dpr::controller::FaultHookFromEnvironment(dir)}));
  auto agents = dpr::controller::MakeGrpcAgentConnector(
      {.tls = tls,
       .keepalive_seconds = static_cast<int>(config.agent_keepalive_seconds),
       .keepalive_timeout_seconds = static_cast<int>(config.agent_keepalive_timeout_seconds)});
  const std::string inbox_dir = dir + "/inboxes/distmgr.box";
  dpr::reassign::RunnerStats stats;
  dpr::reassign::JobRunner runner(*store, *agents,
                                  {.max_jobs = static_cast<int>(config.max_jobs),
                                   .inbox_dir = inbox_dir,
                                   .controller_identity = self.common_name,
                                   .fault_hook = dpr::controller::FaultHookFromEnvironment(dir),
                                   .convert_attempts = static_cast<int>(config.convert_attempts),
                                   .stats = &stats});
  RETURN_IF_ERROR(runner.Start());
  dpr::distmgr::Inbox inbox(
      {.dir = inbox_dir, .scan_interval = std::chrono::seconds(config.inbox_scan_seconds)},
      [&runner](int64_t dpid) { return runner.OnDpu(dpid).status(); });
  RETURN_IF_ERROR(inbox.Start());

  dpr::controller::AdminServiceImpl admin(config, self.common_name, *store, runner, *agents);
  dpr::CallCounts calls;
  std::unique_ptr<dpr::MetricsServer> metrics;
  if (!config.daemon.metrics_listen.empty()) {
    ASSIGN_OR_RETURN(
        metrics,
        dpr::MetricsServer::Start(
            config.daemon.metrics_listen,
            [&] { return dpr::controller::CollectControllerMetrics(*store, runner, stats, calls); },
            dir + "/metrics.addr"));
    SPDLOG_INFO("metrics on http://{}/metrics", metrics->bound());
  }
  ControllerConfig running = config;
  absl::Status served = dpr::ServeUntilSignal(
      {.listen = config.daemon.listen,
       .tls = tls,
       .allowed_roles = {dpr::Role::kAdmin},
       .service_name = "admin API",
       .data_dir = dir,
       .call_counts = &calls,
       .on_reload =
           [&] {
             tls_files->Reload();
             auto fresh = ReadConfig(argc, argv, nullptr);
             dpr::ApplyReloadedConfig(
                 &running.daemon,
                 fresh.ok() ? absl::StatusOr<dpr::DaemonConfig>(fresh->daemon) : fresh.status(),
                 fresh.ok() ? ChangedControllerKeys(running, *fresh) : std::vector<std::string>{});
           },
       .status = [&] { return dpr::controller::ControllerStatusLine(*store, runner); },
       .health =
           [&] {
             auto jobs = store->ListJobs();
             return jobs.ok() ? absl::OkStatus() : jobs.status();
           }},
      {&admin});
  inbox.Stop();
  runner.Stop();
  return served;
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = -1;
  auto config = ReadConfig(argc, argv, &exit_code);
  if (exit_code >= 0) return exit_code;
  if (!config.ok()) {
    std::fprintf(stderr, "dp-controller: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  if (auto st = RunDaemon(*config, argc, argv); !st.ok()) {
    SPDLOG_ERROR("dp-controller: {}", st.ToString());
    std::fprintf(stderr, "dp-controller: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  return 0;
}
