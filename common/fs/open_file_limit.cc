#include "common/fs/open_file_limit.h"

#include <cerrno>

#include "common/status/status_macros.h"

namespace dpr {

absl::StatusOr<rlim_t> RaiseOpenFileLimit() {
  struct rlimit limit {};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return ErrnoError(errno, "getrlimit(RLIMIT_NOFILE)");
  if (limit.rlim_cur == limit.rlim_max) return limit.rlim_cur;
  const rlim_t was = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return ErrnoError(errno, fmt::format("raise the limit of open files from {}", was));
  }
  return limit.rlim_cur;
}

}  // namespace dpr
