#include "common/service/sd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "fmt/format.h"

namespace dpr {

SystemdNotifier SystemdNotifier::FromEnvironment() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  std::optional<std::chrono::microseconds> watchdog;
  uint64_t usec = 0;
  const char* wd = std::getenv("WATCHDOG_USEC");
  const char* wd_pid = std::getenv("WATCHDOG_PID");
  uint64_t pid = 0;
  const bool for_us = wd_pid == nullptr ||
                      (absl::SimpleAtoi(wd_pid, &pid) && pid == static_cast<uint64_t>(getpid()));
  if (wd != nullptr && absl::SimpleAtoi(wd, &usec) && usec > 0 && for_us) {
    watchdog = std::chrono::microseconds(usec);
  }
  return SystemdNotifier(socket != nullptr ? socket : "", watchdog);
}

absl::Status SystemdNotifier::Notify(std::string_view state) const {
  if (!enabled()) return absl::OkStatus();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof(addr.sun_path) ||
      (socket_path_[0] != '/' && socket_path_[0] != '@')) {
    return absl::InvalidArgumentError(
        fmt::format("NOTIFY_SOCKET '{}' is not a socket path", socket_path_));
  }
  std::memcpy(addr.sun_path, socket_path_.data(), socket_path_.size());
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  const socklen_t len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_path_.size());
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(fmt::format("socket: {}", std::strerror(errno)));
  const ssize_t sent = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                              reinterpret_cast<const sockaddr*>(&addr), len);
  const int err = errno;
  close(fd);
  if (sent < 0 || static_cast<size_t>(sent) != state.size()) {
    return absl::UnavailableError(
        fmt::format("notifying systemd at '{}': {}", socket_path_, std::strerror(err)));
  }
  return absl::OkStatus();
}

}  // namespace dpr
