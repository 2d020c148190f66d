// The agent API over gRPC: a thin adapter from protobuf to the agent's
// libraries (importer, preflight, contentlib). Only controller certificates
// reach it (RoleGate in main); once assigned, only the assigned controller.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>

#include "agent/agent_config.h"
#include "agent/assignment.h"
#include "agent/contentlib/content_library.h"
#include "agent/importer/importer.h"
#include "agent/service/agent_activity.h"
#include "dpreassign/v1/agent.grpc.pb.h"

namespace dpr::agent {

class AgentServiceImpl final : public dpreassign::v1::AgentService::Service {
 public:
  // `server_name`: the DP server name from the agent's own certificate.
  // `assignment` must have been loaded.
  AgentServiceImpl(AgentConfig config, std::string server_name, AssignmentStore& assignment);

  grpc::Status GetStatus(grpc::ServerContext* context,
                         const dpreassign::v1::GetAgentStatusRequest* request,
                         dpreassign::v1::AgentStatus* response) override;
  grpc::Status Preflight(grpc::ServerContext* context,
                         const dpreassign::v1::PreflightRequest* request,
                         dpreassign::v1::PreflightReport* response) override;
  grpc::Status AssignSite(grpc::ServerContext* context,
                          const dpreassign::v1::AssignSiteRequest* request,
                          dpreassign::v1::AssignSiteResponse* response) override;
  grpc::Status ConvertContent(grpc::ServerContext* context,
                              const dpreassign::v1::ConvertRequest* request,
                              grpc::ServerWriter<dpreassign::v1::ConvertEvent>* writer) override;
  grpc::Status VerifyLibrary(grpc::ServerContext* context,
                             const dpreassign::v1::VerifyLibraryRequest* request,
                             dpreassign::v1::VerifyReport* response) override;
  grpc::Status WatchVerifyLibrary(grpc::ServerContext* context,
                                  const dpreassign::v1::VerifyLibraryRequest* request,
                                  grpc::ServerWriter<dpreassign::v1::VerifyEvent>* writer) override;
  grpc::Status ListLegacyPackages(grpc::ServerContext* context,
                                  const dpreassign::v1::ListLegacyPackagesRequest* request,
                                  dpreassign::v1::ListLegacyPackagesResponse* response) override;

  // For STATUS= and the metrics.
  const AgentActivity& activity() const { return activity_; }

 private:
  // PERMISSION_DENIED unless the caller is the assigned controller (or, with
  // `allow_unassigned`, the agent is not assigned yet).
  grpc::Status CheckCaller(grpc::ServerContext* context, const char* method, bool allow_unassigned);
  // A PackageRef's location (below the legacy root, `SMSPKGD$\S0700001`)
  // as an absolute folder inside the legacy root, or InvalidArgument.
  absl::StatusOr<std::string> ResolveLocation(const std::string& package_id,
                                              const std::string& location) const;
  absl::StatusOr<std::vector<importer::PackageSpec>> Specs(
      const google::protobuf::RepeatedPtrField<dpreassign::v1::PackageRef>& refs) const;
  void FillStatus(dpreassign::v1::AgentStatus* response) const;
  // Both verify calls: the report, with `progress` called as it goes.
  grpc::Status RunVerify(grpc::ServerContext* context,
                         const dpreassign::v1::VerifyLibraryRequest& request,
                         const contentlib::VerifyProgressFn& progress,
                         dpreassign::v1::VerifyReport* response);

  AgentConfig config_;
  std::string server_name_;
  AssignmentStore& assignment_;
  int64_t started_unix_ms_;
  AgentActivity activity_;
  std::timed_mutex convert_mu_;
  // Test-only: DPR_TEST_AGENT_PACKAGE_DELAY_MS slows each finished package,
  // so tests can kill the agent in the middle of a conversion.
  int test_package_delay_ms_ = 0;
  // Test-only: DPR_TEST_AGENT_VERIFY_DELAY_MS holds a verify before it
  // starts (until its caller leaves), so tests can stop the controller at
  // step 9 or leave an admin's verify.
  int test_verify_delay_ms_ = 0;
};

}  // namespace dpr::agent
