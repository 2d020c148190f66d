// Process-wide logging set-up: one CMTrace file (distmgr.log, smsdpprov.log)
// plus, optionally, plain lines on stderr. Configured once in main; every
// component then asks for its own named logger, which shares the sinks and
// shows its name in CMTrace's Component column.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "spdlog/spdlog.h"

namespace dpr {

struct LogOptions {
  std::string file;               // empty: no file
  std::string default_component;  // name of the default logger
  spdlog::level::level_enum level = spdlog::level::info;
  bool to_stderr = true;
  uint64_t max_bytes = 5 << 20;
};

absl::Status InitLogging(const LogOptions& options);

// The named logger sharing the default logger's sinks and level; made on
// first use. Thread-safe.
std::shared_ptr<spdlog::logger> ComponentLogger(const std::string& name);

// "trace", "debug" (= verbose), "info", "warn", "error".
absl::StatusOr<spdlog::level::level_enum> ParseLogLevel(const std::string& text);

}  // namespace dpr
