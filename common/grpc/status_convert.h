// The one place absl::Status and grpc::Status meet (codes share numbering).
#pragma once

#include "absl/status/status.h"
#include "dpreassign/v1/common.pb.h"
#include "grpcpp/support/status.h"

namespace dpr {

// Messages longer than this are cut (and say so) on the way out.
inline constexpr size_t kMaxStatusMessageBytes = 4096;

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// An Error message for an admin: the status text, its cause, and a hint.
dpreassign::v1::Error ToProtoError(const absl::Status& status, std::string hint = "");

}  // namespace dpr
