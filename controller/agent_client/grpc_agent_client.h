// The AgentConnector that dials real agents over mutual TLS.
#pragma once

#include <memory>

#include "common/grpc/tls_credentials.h"
#include "controller/agent_client/agent_client.h"

namespace dpr::controller {

struct GrpcAgentOptions {
  TlsFiles tls;
  int unary_deadline_seconds = 60;
  // A stalled agent (stopped, or its host gone) is noticed within about
  // keepalive_seconds + keepalive_timeout_seconds.
  int keepalive_seconds = 20;
  int keepalive_timeout_seconds = 10;
};

// Dials agents over mutual TLS; the handshake checks that the agent's
// certificate names `server` (as a DNS or IP subject alternative name) and
// each call checks it carries the agent role.
std::unique_ptr<AgentConnector> MakeGrpcAgentConnector(const GrpcAgentOptions& options);

}  // namespace dpr::controller
