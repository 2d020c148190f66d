// Who is on the other end of a call, from the certificate gRPC verified
// during the handshake (never from anything the peer merely says).
#pragma once

#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "common/grpc/call_counts.h"
#include "common/pki/pki.h"
#include "grpcpp/security/auth_context.h"
#include "grpcpp/security/auth_metadata_processor.h"

namespace dpr {

struct PeerIdentity {
  std::string common_name;
  std::optional<Role> role;
  CertInfo cert;
  // "admin 'ops1' (serial 1A2B...)", for logs and error messages.
  std::string Describe() const;
};

// Unauthenticated if the call carries no verified certificate.
absl::StatusOr<PeerIdentity> PeerFromAuthContext(const grpc::AuthContext& context);

// Rejects, for every method of a server, calls whose verified certificate
// does not carry one of `allowed` roles: PERMISSION_DENIED naming the peer
// and its role, and a warning in the log. Install with
// ServerCredentials::SetAuthMetadataProcessor.
class RoleGate final : public grpc::AuthMetadataProcessor {
 public:
  // Refusals are also counted into `counts` when set: they end the call
  // before any handler or interceptor sees it.
  RoleGate(std::set<Role> allowed, std::string service_name, CallCounts* counts = nullptr);
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed, OutputMetadata* response) override;

 private:
  std::set<Role> allowed_;
  std::string service_name_;
  CallCounts* counts_;
};

}  // namespace dpr
