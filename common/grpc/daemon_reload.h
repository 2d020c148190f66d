// SIGHUP for a daemon: the configuration is read again from the same
// command line, environment and --config file. The log level takes effect
// at once; every other changed key is named in the log as taking effect at
// the next restart (listen addresses, folders and limits are fixed while
// serving). A file that no longer parses is refused with its file:line and
// the running configuration stays.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config/daemon_config.h"

namespace dpr {

// `fresh_daemon`: the re-read shared settings or why they could not be read;
// `other_changed`: the daemon's own keys that differ.
void ApplyReloadedConfig(DaemonConfig* running, const absl::StatusOr<DaemonConfig>& fresh_daemon,
                         const std::vector<std::string>& other_changed);

}  // namespace dpr
