#include "common/status/status_macros.h"

#include <cstring>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"

namespace dpr {

namespace {
constexpr absl::string_view kErrnoPayload = "type.dpreassign/errno";
}  // namespace

absl::Status ErrnoError(int errno_value, std::string_view context) {
  if (errno_value == 0) return absl::UnknownError(std::string(context));
  absl::Status status(absl::ErrnoToStatusCode(errno_value),
                      fmt::format("{}: {}", context, std::strerror(errno_value)));
  status.SetPayload(kErrnoPayload, absl::Cord(std::to_string(errno_value)));
  return status;
}

std::optional<int> ErrnoOf(const absl::Status& status) {
  auto payload = status.GetPayload(kErrnoPayload);
  int value = 0;
  if (!payload || !absl::SimpleAtoi(std::string(*payload), &value)) return std::nullopt;
  return value;
}

absl::Status Annotate(const absl::Status& status, std::string_view context) {
  if (status.ok()) return status;
  absl::Status out(status.code(), fmt::format("{}: {}", context, std::string(status.message())));
  status.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace dpr
