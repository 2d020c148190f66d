// The systemd notification protocol (sd_notify(3)) without libsystemd: a
// datagram of "KEY=value" lines to the socket named by $NOTIFY_SOCKET. Under
// a unit with Type=notify the daemons say READY=1 once serving, STATUS= with
// what they are doing, WATCHDOG=1 while healthy and STOPPING=1 on the way
// out. Outside systemd (no $NOTIFY_SOCKET) every call does nothing.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace dpr {

class SystemdNotifier {
 public:
  // Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID from the
  // environment (as sd_watchdog_enabled does: the PID must be ours if set).
  static SystemdNotifier FromEnvironment();
  // For tests: an explicit socket path ("" = disabled) and interval.
  SystemdNotifier(std::string socket_path, std::optional<std::chrono::microseconds> watchdog)
      : socket_path_(std::move(socket_path)), watchdog_(watchdog) {}

  bool enabled() const { return !socket_path_.empty(); }
  // The watchdog interval systemd expects pings within, if it asked.
  std::optional<std::chrono::microseconds> watchdog() const { return watchdog_; }

  // Sends `state` (one or more "KEY=value" lines). Errors name the socket.
  absl::Status Notify(std::string_view state) const;

 private:
  std::string socket_path_;  // a leading '@' is the abstract namespace
  std::optional<std::chrono::microseconds> watchdog_;
};

}  // namespace dpr
