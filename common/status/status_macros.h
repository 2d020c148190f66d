// Small local versions of RETURN_IF_ERROR / ASSIGN_OR_RETURN: the Debian
// Abseil (20220623) does not ship them. Same meaning as the Google-internal
// ones: propagate a non-OK status unchanged to the caller.
#pragma once

#include <cerrno>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/status/fmt_absl.h"
#include "fmt/format.h"

#define DPR_STATUS_CONCAT_INNER_(a, b) a##b
#define DPR_STATUS_CONCAT_(a, b) DPR_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    ::absl::Status dpr_status_ = (expr);       \
    if (!dpr_status_.ok()) return dpr_status_; \
  } while (false)

#define ASSIGN_OR_RETURN(lhs, expr) \
  DPR_ASSIGN_OR_RETURN_IMPL_(DPR_STATUS_CONCAT_(dpr_statusor_, __LINE__), lhs, expr)

#define DPR_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                               \
  if (!statusor.ok()) return statusor.status();         \
  lhs = std::move(statusor).value()

namespace dpr {

// A status for a failed system call: the canonical code for `errno_value`
// and "context: strerror" as the message. The errno itself rides along as a
// payload, because one code stands for several causes (ENOSPC, EDQUOT,
// EMFILE and ENFILE are all RESOURCE_EXHAUSTED) that call for different
// remedies.
absl::Status ErrnoError(int errno_value, std::string_view context);

// The errno of a status made by ErrnoError (through any Annotate), if any.
std::optional<int> ErrnoOf(const absl::Status& status);

// Prefixes the message of a non-OK status with `context` ("context: message"),
// keeping its code and payloads. OK stays OK.
absl::Status Annotate(const absl::Status& status, std::string_view context);

}  // namespace dpr
