#include "common/grpc/peer_identity.h"

#include "common/log/logging.h"
#include "common/status/fmt_absl.h"
#include "fmt/format.h"
#include "grpc/grpc_security_constants.h"

namespace dpr {

std::string PeerIdentity::Describe() const {
  return fmt::format("{} '{}' (serial {})", role ? RoleName(*role) : "unknown-role", common_name,
                     cert.serial_hex);
}

absl::StatusOr<PeerIdentity> PeerFromAuthContext(const grpc::AuthContext& context) {
  if (!context.IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("the peer presented no verified certificate");
  }
  auto pems = context.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pems.empty()) return absl::UnauthenticatedError("no peer certificate in the auth context");
  auto info = ParseCertificatePem(std::string_view(pems.front().data(), pems.front().size()));
  if (!info.ok()) {
    return absl::UnauthenticatedError(
        fmt::format("peer certificate unreadable: {}", info.status().message()));
  }
  PeerIdentity peer;
  peer.common_name = info->common_name;
  peer.role = info->role;
  peer.cert = std::move(*info);
  return peer;
}

RoleGate::RoleGate(std::set<Role> allowed, std::string service_name, CallCounts* counts)
    : allowed_(std::move(allowed)), service_name_(std::move(service_name)), counts_(counts) {}

grpc::Status RoleGate::Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                               OutputMetadata* /*consumed*/, OutputMetadata* /*response*/) {
  auto count = [&](grpc::StatusCode code) {
    if (counts_ == nullptr) return;
    auto path = auth_metadata.find(":path");
    counts_->Add(path == auth_metadata.end()
                     ? std::string("(refused before the call)")
                     : std::string(path->second.data(), path->second.size()),
                 static_cast<int>(code));
  };
  auto peer = PeerFromAuthContext(*context);
  if (!peer.ok()) {
    SPDLOG_LOGGER_WARN(ComponentLogger("auth"), "refused a call to the {}: {}", service_name_,
                       std::string(peer.status().message()));
    count(grpc::StatusCode::UNAUTHENTICATED);
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, std::string(peer.status().message()));
  }
  if (!peer->role || !allowed_.count(*peer->role)) {
    std::string allowed;
    for (Role r : allowed_) allowed += (allowed.empty() ? "" : " or ") + std::string(RoleName(r));
    std::string why = fmt::format("{} may not call the {}: it accepts only {} certificates",
                                  peer->Describe(), service_name_, allowed);
    SPDLOG_LOGGER_WARN(ComponentLogger("auth"), "refused: {}", why);
    count(grpc::StatusCode::PERMISSION_DENIED);
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, why);
  }
  return grpc::Status::OK;
}

}  // namespace dpr
