// Routes gRPC core's own log lines (handshake failures and the like, which a
// rejected client never sees) into spdlog under the component "grpc".
#pragma once

#include "spdlog/common.h"

namespace dpr {

// Call once, after InitLogging. At debug level gRPC's informational lines
// are included; otherwise only its errors.
void RouteGrpcLogsToSpdlog(spdlog::level::level_enum level);

}  // namespace dpr
