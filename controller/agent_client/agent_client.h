// How the controller talks to a DP's agent. The runner and distmgr see only
// this interface; the gRPC connector (grpc_agent_client.h) dials the real agent over mutual TLS,
// and tests substitute an in-process fake.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dpreassign/v1/agent.pb.h"

namespace dpr::controller {

namespace v1 = ::dpreassign::v1;

class AgentClient {
 public:
  virtual ~AgentClient() = default;
  virtual absl::StatusOr<v1::PreflightReport> Preflight(const v1::PreflightRequest& request) = 0;
  virtual absl::StatusOr<v1::AssignSiteResponse> AssignSite(
      const v1::AssignSiteRequest& request) = 0;
  // Streams the conversion; `on_event` sees every event in order. Returns
  // the stream's final status.
  virtual absl::Status Convert(const v1::ConvertRequest& request,
                               const std::function<void(const v1::ConvertEvent&)>& on_event) = 0;
  virtual absl::StatusOr<v1::VerifyReport> Verify(const v1::VerifyLibraryRequest& request) = 0;
  // Verify, with `on_progress` called as the agent reports progress (not at
  // all by an agent that cannot).
  virtual absl::StatusOr<v1::VerifyReport> WatchVerify(
      const v1::VerifyLibraryRequest& request,
      const std::function<void(const v1::VerifyProgress&)>& on_progress) {
    (void)on_progress;
    return Verify(request);
  }
  // Ends a Convert in progress (shutdown): it returns CANCELLED soon after.
  virtual void Cancel() {}
};

class AgentConnector {
 public:
  virtual ~AgentConnector() = default;
  // A client for the agent at `endpoint` that must prove it is `server`.
  virtual absl::StatusOr<std::shared_ptr<AgentClient>> Connect(const std::string& endpoint,
                                                               const std::string& server) = 0;
};

}  // namespace dpr::controller
