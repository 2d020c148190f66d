#include "controller/service/admin_service.h"

#include <chrono>

#include "common/grpc/peer_identity.h"

namespace dpr::controller {

AdminServiceImpl::AdminServiceImpl(ControllerConfig config, std::string server_name)
    : config_(std::move(config)),
      server_name_(std::move(server_name)),
      started_unix_ms_(std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count()) {}

grpc::Status AdminServiceImpl::GetStatus(grpc::ServerContext* context,
                                         const dpreassign::v1::GetControllerStatusRequest*,
                                         dpreassign::v1::ControllerStatus* response) {
  response->set_version(DPR_VERSION);
  response->set_server_name(server_name_);
  response->set_data_dir(config_.daemon.data_dir);
  response->set_started_unix_ms(started_unix_ms_);
  if (auto peer = PeerFromAuthContext(*context->auth_context()); peer.ok()) {
    response->set_peer_identity(peer->Describe());
  }
  return grpc::Status::OK;
}

}  // namespace dpr::controller
