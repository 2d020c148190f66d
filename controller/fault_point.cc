#include "controller/fault_point.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>

#include "absl/strings/numbers.h"
#include "common/fs/durable_file.h"
#include "spdlog/spdlog.h"

namespace dpr::controller {

sitedb::FaultHook FaultHookFromEnvironment(const std::string& data_dir) {
  const char* env = std::getenv("DPR_TEST_FAULT_POINT");
  if (env == nullptr || *env == '\0') return nullptr;
  std::string spec(env);
  int64_t nth = 1;
  if (auto hash = spec.find('#'); hash != std::string::npos) {
    if (!absl::SimpleAtoi(spec.substr(hash + 1), &nth) || nth < 1) nth = 1;
    spec.resize(hash);
  }
  SPDLOG_WARN("test fault point armed: {} (occurrence {})", spec, nth);
  auto seen = std::make_shared<std::atomic<int64_t>>(0);
  return [spec, nth, seen, data_dir](std::string_view point) {
    if (point != spec || ++*seen != nth) return;
    SPDLOG_WARN("test fault point {} reached: waiting to be killed", spec);
    spdlog::default_logger()->flush();
    (void)WriteFileDurably(data_dir + "/fault.hit", spec);
    for (;;) ::pause();
  };
}

}  // namespace dpr::controller
