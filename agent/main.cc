// dp-agent: the DP-side daemon (the smsdpprov analogue). Parses flags and
// config, sets up logging, and serves the agent API until SIGINT/SIGTERM
// (SIGHUP: certificates and configuration read again).
#include <unistd.h>

#include <cstdio>

#include "CLI/CLI.hpp"
#include "agent/agent_config.h"
#include "agent/agent_metrics.h"
#include "agent/local_commands.h"
#include "agent/service/agent_service.h"
#include "common/fs/durable_file.h"
#include "common/fs/open_file_limit.h"
#include "common/grpc/daemon_reload.h"
#include "common/grpc/grpc_log.h"
#include "common/grpc/server_runner.h"
#include "common/grpc/validated_tls_files.h"
#include "common/log/logging.h"
#include "common/status/status_macros.h"

namespace {

using dpr::agent::AgentConfig;

// SIGHUP: the daemon's command line, environment and --config file again.
absl::StatusOr<AgentConfig> RereadConfig(int argc, char** argv) {
  CLI::App app;
  dpr::agent::AgentFlags flags;
  dpr::agent::AddAgentFlags(app, &flags);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  return dpr::agent::ResolveAgentConfig(app, flags);
}

absl::Status RunDaemon(const AgentConfig& config, int argc, char** argv) {
  // Before any thread starts (the TLS watcher, the metrics server, gRPC's):
  // they inherit the mask, so SIGTERM and SIGHUP reach only the serving
  // loop. A thread started earlier could take a SIGHUP and die of it.
  dpr::BlockTerminationSignals();
  RETURN_IF_ERROR(dpr::MakeDirs(config.daemon.data_dir + "/logs", 0750));
  // The library is built below the content root; status reports its free
  // space from the start, so it must exist.
  RETURN_IF_ERROR(dpr::MakeDirs(config.content_root, 0755));
  ASSIGN_OR_RETURN(auto level, dpr::ParseLogLevel(config.daemon.log_level));
  RETURN_IF_ERROR(dpr::InitLogging({.file = config.daemon.data_dir + "/logs/smsdpprov.log",
                                    .default_component = "SMS_DP_PROVIDER",
                                    .level = level}));
  dpr::RouteGrpcLogsToSpdlog(level);
  ASSIGN_OR_RETURN(auto tls_files, dpr::StartDaemonTls(config.daemon, dpr::Role::kAgent));
  const dpr::TlsFiles& tls = tls_files->active();
  const dpr::CertInfo& self = tls_files->identity();
  SPDLOG_INFO("dp-agent {} starting for DP '{}', content root '{}'", DPR_VERSION, self.common_name,
              config.content_root);
  dpr::agent::AssignmentStore assignment(config.daemon.data_dir);
  RETURN_IF_ERROR(assignment.Load());
  if (auto a = assignment.Get()) {
    SPDLOG_INFO("assigned to site {} as DPID {}; obeying only controller '{}'", a->site_code,
                a->dpid, a->controller_identity);
  }
  dpr::agent::AgentServiceImpl service(config, self.common_name, assignment);
  dpr::CallCounts calls;
  std::unique_ptr<dpr::MetricsServer> metrics;
  if (!config.daemon.metrics_listen.empty()) {
    ASSIGN_OR_RETURN(metrics, dpr::MetricsServer::Start(
                                  config.daemon.metrics_listen,
                                  [&] {
                                    return dpr::agent::CollectAgentMetrics(
                                        service.activity(), calls, config.content_root);
                                  },
                                  config.daemon.data_dir + "/metrics.addr"));
    SPDLOG_INFO("metrics on http://{}/metrics", metrics->bound());
  }
  AgentConfig running = config;
  return dpr::ServeUntilSignal(
      {.listen = config.daemon.listen,
       .tls = tls,
       .allowed_roles = {dpr::Role::kController},
       .service_name = "agent API",
       .data_dir = config.daemon.data_dir,
       .call_counts = &calls,
       .on_reload =
           [&] {
             tls_files->Reload();
             auto fresh = RereadConfig(argc, argv);
             std::vector<std::string> changed;
             if (fresh.ok() && fresh->content_root != running.content_root) {
               changed.push_back("content_root");
             }
             if (fresh.ok() && fresh->legacy_root != running.legacy_root) {
               changed.push_back("legacy_root");
             }
             dpr::ApplyReloadedConfig(
                 &running.daemon,
                 fresh.ok() ? absl::StatusOr<dpr::DaemonConfig>(fresh->daemon) : fresh.status(),
                 changed);
           },
       .status = [&] { return dpr::agent::AgentStatusLine(service.activity(), assignment); },
       .health =
           [&] {
             // The library's folder must still be there and reachable.
             return access(config.content_root.c_str(), R_OK | W_OK | X_OK) == 0
                        ? absl::OkStatus()
                        : absl::UnavailableError("content root '" + config.content_root +
                                                 "' is not accessible");
           }},
      {&service});
}

}  // namespace

int main(int argc, char** argv) {
  // Best effort: should it fail, a conversion that runs out of files says
  // so and how to raise the limit.
  (void)dpr::RaiseOpenFileLimit();
  CLI::App app{
      "dp-agent: converts a distribution point's legacy package folders into a "
      "content library, driven by dp-controller"};
  dpr::agent::AgentFlags flags;
  dpr::agent::AddAgentFlags(app, &flags);
  int local_exit = -1;  // set when a local subcommand ran
  dpr::agent::AddLocalCommands(app, &local_exit);
  app.require_subcommand(0, 1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  if (local_exit >= 0) return local_exit;
  auto config = dpr::agent::ResolveAgentConfig(app, flags);
  if (!config.ok()) {
    std::fprintf(stderr, "dp-agent: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  if (auto st = RunDaemon(*config, argc, argv); !st.ok()) {
    SPDLOG_ERROR("dp-agent: {}", st.ToString());
    std::fprintf(stderr, "dp-agent: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  return 0;
}
