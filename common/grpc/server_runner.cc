#include "common/grpc/server_runner.h"

#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <chrono>

#include "common/fs/durable_file.h"
#include "common/grpc/peer_identity.h"
#include "common/log/logging.h"
#include "common/service/sd_notify.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"

namespace dpr {

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

absl::Status ServeUntilSignal(const ServeOptions& options,
                              const std::vector<grpc::Service*>& services,
                              const std::function<void(const std::string& bound)>& on_ready) {
  BlockTerminationSignals();
  auto log = spdlog::default_logger();
  ASSIGN_OR_RETURN(auto creds, MakeServerCredentials(options.tls));
  creds->SetAuthMetadataProcessor(
      std::make_shared<RoleGate>(options.allowed_roles, options.service_name, options.call_counts));

  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, creds, &port);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  // A stalled or vanished peer must be noticed: ping idle connections and
  // allow clients' keepalive pings.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  for (grpc::Service* s : services) builder.RegisterService(s);
  if (options.call_counts != nullptr) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(MakeCallCountingInterceptor(options.call_counts));
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    return absl::UnavailableError(
        fmt::format("cannot listen on '{}' (address in use, or not an address of this machine?)",
                    options.listen));
  }
  std::string host = options.listen.substr(0, options.listen.rfind(':'));
  std::string bound = fmt::format("{}:{}", host, port);
  if (!options.data_dir.empty()) {
    RETURN_IF_ERROR(WriteFileDurably(options.data_dir + "/listen.addr", bound + "\n"));
  }
  SPDLOG_LOGGER_INFO(log, "listening on {} (mutual TLS; {} certificates accepted)", bound,
                     options.service_name);
  if (on_ready) on_ready(bound);

  const SystemdNotifier systemd = SystemdNotifier::FromEnvironment();
  auto notify = [&](const std::string& state) {
    if (auto st = systemd.Notify(state); !st.ok()) {
      SPDLOG_LOGGER_WARN(log, "systemd: {}", std::string(st.message()));
    }
  };
  // The status line costs a site-database read; only systemd reads it.
  const bool want_status = options.status && systemd.enabled();
  std::string status = want_status ? options.status() : "serving";
  notify("READY=1\nSTATUS=" + status);

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  // Wake at least every 2 s: to hand freed memory back (gRPC reads each
  // message, even one it then refuses as too large, into many small slices;
  // glibc kept the freed pages of every arena, so a flood of oversized
  // messages grew the controller by 323 MiB (800 x 17 MiB,
  // tests/fault/hostile_client.py) while heaptrack saw at most 65 MiB live
  // and nothing leaked), to refresh STATUS= and to ping the watchdog at a
  // quarter of its interval.
  auto tick = std::chrono::microseconds(2'000'000);
  if (systemd.watchdog()) tick = std::min(tick, *systemd.watchdog() / 4);
  const timespec wait{static_cast<time_t>(tick.count() / 1'000'000),
                      static_cast<long>(tick.count() % 1'000'000) * 1000};
  absl::Status last_health = absl::OkStatus();
  int sig = 0;
  for (;;) {
    sig = sigtimedwait(&set, nullptr, &wait);
    if (sig == SIGINT || sig == SIGTERM) break;
    if (sig == SIGHUP) {
      SPDLOG_LOGGER_INFO(log, "received SIGHUP; reloading certificates and configuration");
      notify("RELOADING=1");
      if (options.on_reload) options.on_reload();
      notify("READY=1");
    }
    malloc_trim(0);
    if (want_status) {
      std::string now = options.status();
      if (now != status) {
        status = std::move(now);
        notify("STATUS=" + status);
      }
    }
    if (systemd.watchdog()) {
      absl::Status health = options.health ? options.health() : absl::OkStatus();
      if (health.ok()) {
        notify("WATCHDOG=1");
      } else if (health.message() != last_health.message()) {
        SPDLOG_LOGGER_ERROR(log, "health check failed, not pinging the systemd watchdog: {}",
                            std::string(health.message()));
      }
      last_health = health;
    }
  }
  notify("STOPPING=1");
  SPDLOG_LOGGER_INFO(log, "received {}; shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server->Wait();
  SPDLOG_LOGGER_INFO(log, "stopped");
  return absl::OkStatus();
}

}  // namespace dpr
