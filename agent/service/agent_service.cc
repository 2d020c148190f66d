#include "agent/service/agent_service.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include "common/grpc/peer_identity.h"

namespace dpr::agent {
namespace {

bool IsDir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

AgentServiceImpl::AgentServiceImpl(AgentConfig config, std::string server_name)
    : config_(std::move(config)),
      server_name_(std::move(server_name)),
      started_unix_ms_(NowUnixMs()) {}

grpc::Status AgentServiceImpl::GetStatus(grpc::ServerContext* context,
                                         const dpreassign::v1::GetAgentStatusRequest*,
                                         dpreassign::v1::AgentStatus* response) {
  response->set_server_name(server_name_);
  response->set_version(DPR_VERSION);
  response->set_content_root(config_.content_root);
  const std::string lib = config_.content_root + "/SCCMContentLib";
  response->set_has_datalib(IsDir(lib + "/DataLib"));
  response->set_has_filelib(IsDir(lib + "/FileLib"));
  response->set_has_pkglib(IsDir(lib + "/PkgLib"));
  struct statvfs vfs {};
  if (::statvfs(config_.content_root.c_str(), &vfs) == 0) {
    response->set_free_bytes(static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize);
    response->set_total_bytes(static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize);
  }
  response->set_started_unix_ms(started_unix_ms_);
  if (auto peer = PeerFromAuthContext(*context->auth_context()); peer.ok()) {
    response->set_peer_identity(peer->Describe());
  }
  return grpc::Status::OK;
}

}  // namespace dpr::agent
