// The controller's admin API over gRPC: a thin adapter to the controller's
// libraries. Only admin certificates reach it (RoleGate in main).
#pragma once

#include <string>

#include "controller/controller_config.h"
#include "dpreassign/v1/admin.grpc.pb.h"

namespace dpr::controller {

class AdminServiceImpl final : public dpreassign::v1::AdminService::Service {
 public:
  AdminServiceImpl(ControllerConfig config, std::string server_name);

  grpc::Status GetStatus(grpc::ServerContext* context,
                         const dpreassign::v1::GetControllerStatusRequest* request,
                         dpreassign::v1::ControllerStatus* response) override;

 private:
  ControllerConfig config_;
  std::string server_name_;
  int64_t started_unix_ms_;
};

}  // namespace dpr::controller
