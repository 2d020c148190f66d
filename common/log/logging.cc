#include "common/log/logging.h"

#include "common/log/cmtrace_sink.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace dpr {

absl::Status InitLogging(const LogOptions& options) {
  std::vector<spdlog::sink_ptr> sinks;
  if (!options.file.empty()) {
    ASSIGN_OR_RETURN(auto sink, CmtraceFileSink::Open(options.file, options.max_bytes));
    sinks.push_back(std::move(sink));
  }
  if (options.to_stderr) {
    auto err = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    err->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ [%n] %v");
    sinks.push_back(std::move(err));
  }
  auto logger =
      std::make_shared<spdlog::logger>(options.default_component, sinks.begin(), sinks.end());
  logger->set_level(options.level);
  logger->flush_on(spdlog::level::warn);
  spdlog::drop_all();
  spdlog::set_default_logger(logger);
  spdlog::set_level(options.level);
  return absl::OkStatus();
}

std::shared_ptr<spdlog::logger> ComponentLogger(const std::string& name) {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  if (auto existing = spdlog::get(name)) return existing;
  auto base = spdlog::default_logger();
  auto logger = base->clone(name);
  logger->set_level(base->level());
  spdlog::register_logger(logger);
  return logger;
}

absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(const std::string& text) {
  if (text == "trace") return spdlog::level::trace;
  if (text == "debug" || text == "verbose") return spdlog::level::debug;
  if (text == "info") return spdlog::level::info;
  if (text == "warn" || text == "warning") return spdlog::level::warn;
  if (text == "error") return spdlog::level::err;
  return absl::InvalidArgumentError(
      fmt::format("unknown log level '{}' (use trace, debug, info, warn or error)", text));
}

}  // namespace dpr
