#include "common/grpc/grpc_log.h"

#include <grpc/support/log.h>

#include "common/log/logging.h"

namespace dpr {
namespace {

void LogFromGrpc(gpr_log_func_args* args) {
  static auto logger = ComponentLogger("grpc");
  spdlog::level::level_enum level = spdlog::level::debug;
  switch (args->severity) {
    case GPR_LOG_SEVERITY_ERROR:
      level = spdlog::level::err;
      break;
    case GPR_LOG_SEVERITY_INFO:
      level = spdlog::level::info;
      break;
    case GPR_LOG_SEVERITY_DEBUG:
      level = spdlog::level::debug;
      break;
  }
  logger->log(spdlog::source_loc{args->file, args->line, ""}, level, "{}", args->message);
}

}  // namespace

void RouteGrpcLogsToSpdlog(spdlog::level::level_enum level) {
  gpr_set_log_verbosity(level <= spdlog::level::debug ? GPR_LOG_SEVERITY_INFO
                                                      : GPR_LOG_SEVERITY_ERROR);
  gpr_set_log_function(LogFromGrpc);
}

}  // namespace dpr
