// The controller's admin API over gRPC: a thin adapter to the controller's
// libraries. Only admin certificates reach it (RoleGate in main).
#pragma once

#include <functional>
#include <string>

#include "controller/agent_client/agent_client.h"
#include "controller/controller_config.h"
#include "controller/reassign/job_runner.h"
#include "controller/sitedb/site_store.h"
#include "dpreassign/v1/admin.grpc.pb.h"

namespace dpr::controller {

class AdminServiceImpl final : public dpreassign::v1::AdminService::Service {
 public:
  AdminServiceImpl(ControllerConfig config, std::string server_name, sitedb::SiteStore& store,
                   reassign::JobRunner& runner, AgentConnector& agents);

  grpc::Status GetStatus(grpc::ServerContext* context,
                         const dpreassign::v1::GetControllerStatusRequest* request,
                         dpreassign::v1::ControllerStatus* response) override;
  grpc::Status ImportInventory(grpc::ServerContext* context,
                               const dpreassign::v1::ImportInventoryRequest* request,
                               dpreassign::v1::ImportInventoryResponse* response) override;
  grpc::Status ListDistributionPoints(
      grpc::ServerContext* context, const dpreassign::v1::ListDistributionPointsRequest* request,
      dpreassign::v1::ListDistributionPointsResponse* response) override;
  grpc::Status GetDistributionPoint(grpc::ServerContext* context,
                                    const dpreassign::v1::GetDistributionPointRequest* request,
                                    dpreassign::v1::DistributionPointDetail* response) override;
  grpc::Status StartReassignment(grpc::ServerContext* context,
                                 const dpreassign::v1::StartReassignmentRequest* request,
                                 dpreassign::v1::StartReassignmentResponse* response) override;
  grpc::Status WatchJob(grpc::ServerContext* context,
                        const dpreassign::v1::WatchJobRequest* request,
                        grpc::ServerWriter<dpreassign::v1::JobEvent>* writer) override;
  grpc::Status ListJobs(grpc::ServerContext* context,
                        const dpreassign::v1::ListJobsRequest* request,
                        dpreassign::v1::ListJobsResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const dpreassign::v1::GetJobRequest* request,
                      dpreassign::v1::Job* response) override;
  grpc::Status RetryConversion(grpc::ServerContext* context,
                               const dpreassign::v1::RetryConversionRequest* request,
                               dpreassign::v1::Job* response) override;
  grpc::Status VerifyDistributionPoint(
      grpc::ServerContext* context, const dpreassign::v1::VerifyDistributionPointRequest* request,
      dpreassign::v1::VerifyReport* response) override;
  grpc::Status WatchVerifyDistributionPoint(
      grpc::ServerContext* context, const dpreassign::v1::VerifyDistributionPointRequest* request,
      grpc::ServerWriter<dpreassign::v1::VerifyEvent>* writer) override;

 private:
  // Both verify calls: the DP's agent's report (after a repair if asked),
  // with progress if wanted. The agent's verify is cancelled when `context`
  // is: the admin left, or the watcher's stream broke.
  absl::StatusOr<dpreassign::v1::VerifyReport> VerifyDp(
      grpc::ServerContext* context, const dpreassign::v1::VerifyDistributionPointRequest& request,
      const std::function<void(const dpreassign::v1::VerifyProgress&)>& on_progress);

  ControllerConfig config_;
  std::string server_name_;
  sitedb::SiteStore& store_;
  reassign::JobRunner& runner_;
  AgentConnector& agents_;
  int64_t started_unix_ms_;
};

}  // namespace dpr::controller
