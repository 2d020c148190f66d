#include "common/grpc/server_runner.h"

#include <malloc.h>
#include <signal.h>

#include <chrono>

#include "common/fs/durable_file.h"
#include "common/grpc/peer_identity.h"
#include "common/log/logging.h"
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
      std::make_shared<RoleGate>(options.allowed_roles, options.service_name));

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

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  // While waiting, hand freed memory back every few seconds. gRPC reads each
  // message, even one it then refuses as too large, into many small slices;
  // glibc keeps the freed pages of every arena, so a flood of oversized
  // messages grew the controller by 323 MiB (800 x 17 MiB,
  // tests/fault/hostile_client.py) while heaptrack saw at most 65 MiB live
  // and nothing leaked.
  const timespec trim_every{2, 0};
  while ((sig = sigtimedwait(&set, nullptr, &trim_every)) < 0) malloc_trim(0);
  SPDLOG_LOGGER_INFO(log, "received {}; shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server->Wait();
  SPDLOG_LOGGER_INFO(log, "stopped");
  return absl::OkStatus();
}

}  // namespace dpr
