// The agent API over gRPC: a thin adapter from protobuf to the agent's
// libraries. Only controller certificates reach it (RoleGate in main).
#pragma once

#include <chrono>
#include <string>

#include "agent/agent_config.h"
#include "dpreassign/v1/agent.grpc.pb.h"

namespace dpr::agent {

class AgentServiceImpl final : public dpreassign::v1::AgentService::Service {
 public:
  // `server_name`: the DP server name from the agent's own certificate.
  AgentServiceImpl(AgentConfig config, std::string server_name);

  grpc::Status GetStatus(grpc::ServerContext* context,
                         const dpreassign::v1::GetAgentStatusRequest* request,
                         dpreassign::v1::AgentStatus* response) override;

 private:
  AgentConfig config_;
  std::string server_name_;
  int64_t started_unix_ms_;
};

}  // namespace dpr::agent
