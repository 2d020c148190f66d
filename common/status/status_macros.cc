#include "common/status/status_macros.h"

#include <cstring>

namespace dpr {

absl::Status ErrnoError(int errno_value, std::string_view context) {
  if (errno_value == 0) return absl::UnknownError(std::string(context));
  return absl::Status(absl::ErrnoToStatusCode(errno_value),
                      fmt::format("{}: {}", context, std::strerror(errno_value)));
}

absl::Status Annotate(const absl::Status& status, std::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), fmt::format("{}: {}", context, std::string(status.message())));
}

}  // namespace dpr
