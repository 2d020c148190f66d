// Runs a gRPC server over mutual TLS until SIGINT or SIGTERM: binds (port 0
// picks a free one), installs the role gate, records the bound address in
// "<data_dir>/listen.addr" so scripts and tests can find an ephemeral port,
// and shuts down gracefully with a deadline. Under systemd (Type=notify) it
// says READY=1 once serving, keeps STATUS= current, pings the watchdog while
// the daemon's health check passes, and SIGHUP runs the reload hook.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/grpc/call_counts.h"
#include "common/grpc/tls_credentials.h"
#include "grpcpp/impl/codegen/service_type.h"

namespace dpr {

struct ServeOptions {
  std::string listen;  // "HOST:PORT"
  TlsFiles tls;
  std::set<Role> allowed_roles;  // who may call any method
  std::string service_name;      // for refusal messages: "agent API"
  std::string data_dir;          // where listen.addr goes
  int max_message_bytes = 16 << 20;
  CallCounts* call_counts = nullptr;  // finished calls by method and code, if set
  // Run from the waiting thread. on_reload: on SIGHUP (certificates and
  // config). status: what the daemon is doing, for systemd's STATUS= (sent
  // when it changes). health: the watchdog is pinged only while it is OK.
  std::function<void()> on_reload;
  std::function<std::string()> status;
  std::function<absl::Status()> health;
};

// Blocks SIGINT and SIGTERM in the calling thread (do it before starting any
// other thread, so they inherit the mask), serves, and returns after a
// signal once the server has stopped. `on_ready` runs once serving.
absl::Status ServeUntilSignal(const ServeOptions& options,
                              const std::vector<grpc::Service*>& services,
                              const std::function<void(const std::string& bound)>& on_ready = {});

// Blocks SIGINT/SIGTERM/SIGHUP for this thread and its future children.
void BlockTerminationSignals();

}  // namespace dpr
