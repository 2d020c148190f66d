// The limit of open files a process starts with is often 1,024 (the soft
// limit of a login shell or a systemd unit without LimitNOFILE=), far below
// its hard limit. A conversion keeps a folder open per package in flight
// (up to 128 in a batch) on top of its workers' files, so dp-agent raises
// its soft limit to the hard one at start, as Go programs and nginx do.
#pragma once

#include <sys/resource.h>

#include "absl/status/statusor.h"

namespace dpr {

// Raises this process's soft RLIMIT_NOFILE to its hard limit and returns
// the soft limit now in force.
absl::StatusOr<rlim_t> RaiseOpenFileLimit();

}  // namespace dpr
