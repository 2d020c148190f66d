#include "common/grpc/status_convert.h"

#include <string>

namespace dpr {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  std::string message(status.message());
  // The message travels as a trailer; one echoing a huge request field made
  // the reply exceed the client's metadata limit, so the caller saw
  // RESOURCE_EXHAUSTED instead of the real code. Keep the head.
  if (message.size() > kMaxStatusMessageBytes) {
    const size_t cut = message.size() - kMaxStatusMessageBytes;
    message.resize(kMaxStatusMessageBytes);
    message += "... (" + std::to_string(cut) + " more bytes)";
  }
  return grpc::Status(static_cast<grpc::StatusCode>(static_cast<int>(status.code())),
                      std::move(message));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  int code = static_cast<int>(status.error_code());
  if (code < 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    code = static_cast<int>(absl::StatusCode::kUnknown);
  }
  return absl::Status(static_cast<absl::StatusCode>(code), status.error_message());
}

dpreassign::v1::Error ToProtoError(const absl::Status& status, std::string hint) {
  dpreassign::v1::Error e;
  e.set_code(static_cast<int>(status.code()));
  std::string message(status.message());
  // "what: cause" — the text after the last ": " is the innermost cause.
  auto pos = message.rfind(": ");
  if (pos != std::string::npos) e.set_cause(message.substr(pos + 2));
  e.set_message(std::move(message));
  e.set_hint(std::move(hint));
  return e;
}

}  // namespace dpr
