// An spdlog sink writing the CMTrace line format that ConfigMgr admins read
// with CMTrace/OneTrace:
//   <![LOG[text]LOG]!><time="HH:mm:ss.fff+bias" date="MM-DD-YYYY"
//   component="..." context="" type="1|2|3" thread="..." file="name:line">
// bias is minutes to add to local time to get UTC (Windows' TIME_ZONE bias:
// +300 for UTC-5). type: 1 informational, 2 warning, 3 error. Lines end with
// "\r\n" as the Windows originals do. Like the real components, the file
// rolls over to "<name>.lo_" when it passes max_bytes.
#pragma once

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "spdlog/sinks/base_sink.h"

namespace dpr {

// Formats one record. `utc_offset_minutes` is local minus UTC (+60 for CET);
// nullopt means the machine's time zone at that instant.
std::string FormatCmtraceLine(const spdlog::details::log_msg& msg,
                              std::optional<int> utc_offset_minutes = std::nullopt);

class CmtraceFileSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // Opens (appends to) `path`. Errors name the path.
  static absl::StatusOr<std::shared_ptr<CmtraceFileSink>> Open(const std::string& path,
                                                               uint64_t max_bytes = 5 << 20);
  ~CmtraceFileSink() override;

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override;

 private:
  CmtraceFileSink(std::string path, std::FILE* file, uint64_t size, uint64_t max_bytes);
  void RollOver();

  std::string path_;
  std::FILE* file_;
  uint64_t size_;
  uint64_t max_bytes_;
};

}  // namespace dpr
