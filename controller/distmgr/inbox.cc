#include "controller/distmgr/inbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <vector>

#include "absl/time/clock.h"
#include "common/fs/durable_file.h"
#include "common/log/logging.h"
#include "common/status/fmt_absl.h"
#include "common/status/status_macros.h"
#include "controller/distmgr/dpu_name.h"
#include "fmt/format.h"

namespace dpr::distmgr {

namespace {

std::shared_ptr<spdlog::logger> Log() { return ComponentLogger("SMS_DISTRIBUTION_MANAGER"); }

}  // namespace

Inbox::Inbox(InboxOptions options, DpuHandler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {}

Inbox::~Inbox() { Stop(); }

absl::Status Inbox::Start() {
  RETURN_IF_ERROR(MakeDirs(options_.dir, 0750));
  RETURN_IF_ERROR(MakeDirs(options_.dir + "/bad", 0750));
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) return ErrnoError(errno, "inotify_init1 for the distmgr inbox");
  if (::inotify_add_watch(inotify_fd_, options_.dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
    return ErrnoError(errno, fmt::format("watching the distmgr inbox '{}'", options_.dir));
  }
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) return ErrnoError(errno, "eventfd for the distmgr inbox");
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void Inbox::Stop() {
  if (thread_.joinable()) {
    stop_ = true;
    uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
    thread_.join();
  }
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  inotify_fd_ = wake_fd_ = -1;
}

void Inbox::Loop() {
  // Whatever arrived while the controller was down.
  auto first = ScanOnce(/*respect_settle=*/false);
  if (first.handled + first.set_aside > 0) {
    Log()->info("distmgr inbox: {} .dpu file(s) handled, {} set aside at start-up", first.handled,
                first.set_aside);
  }
  auto next_scan = std::chrono::steady_clock::now() + options_.scan_interval;
  std::vector<char> buf(64 * 1024);
  while (!stop_) {
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        next_scan - std::chrono::steady_clock::now());
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(std::max<int64_t>(0, wait.count())));
    if (stop_) break;
    if (n < 0 && errno != EINTR) {
      Log()->error("distmgr inbox: poll failed: {}", std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    bool overflow = false;
    std::set<std::string> names;
    if (n > 0 && (fds[0].revents & POLLIN)) {
      for (;;) {
        ssize_t len = ::read(inotify_fd_, buf.data(), buf.size());
        if (len <= 0) break;
        for (ssize_t off = 0; off < len;) {
          auto* ev = reinterpret_cast<inotify_event*>(buf.data() + off);
          if (ev->mask & IN_Q_OVERFLOW) overflow = true;
          if (ev->len > 0) names.insert(ev->name);
          off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
        }
      }
    }
    InboxCounts counts;
    if (overflow) {
      Log()->warn("distmgr inbox: too many files at once for inotify; scanning the folder");
      counts = ScanOnce(false);
    } else {
      // Closed after writing or renamed in: complete, no need to settle.
      for (const auto& name : names) HandleName(name, false, &counts);
    }
    if (std::chrono::steady_clock::now() >= next_scan) {
      auto scanned = ScanOnce(true);
      counts.handled += scanned.handled;
      counts.set_aside += scanned.set_aside;
      next_scan = std::chrono::steady_clock::now() + options_.scan_interval;
    }
  }
}

InboxCounts Inbox::ScanOnce(bool respect_settle) {
  InboxCounts counts;
  DIR* d = ::opendir(options_.dir.c_str());
  if (d == nullptr) {
    Log()->error("distmgr inbox: cannot read '{}': {}", options_.dir, std::strerror(errno));
    return counts;
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
  ::closedir(d);
  for (const auto& name : names) HandleName(name, respect_settle, &counts);
  return counts;
}

void Inbox::SetAside(const std::string& name, const std::string& reason, InboxCounts* counts) {
  const std::string from = options_.dir + "/" + name;
  const std::string to =
      fmt::format("{}/bad/{}.{}", options_.dir, name, absl::ToUnixMillis(absl::Now()));
  if (::rename(from.c_str(), to.c_str()) != 0) {
    Log()->error("distmgr inbox: cannot set '{}' aside: {}", name, std::strerror(errno));
    return;
  }
  Log()->error("distmgr inbox: '{}' set aside in bad/: {}", name, reason);
  ++counts->set_aside;
}

void Inbox::HandleName(const std::string& name, bool respect_settle, InboxCounts* counts) {
  DpuName what = ClassifyDpuName(name);
  if (what.kind == DpuNameKind::kIgnore) return;
  const std::string path = options_.dir + "/" + name;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;  // already handled (event and scan both saw it)
  if (!S_ISREG(st.st_mode)) {
    SetAside(name, "not a regular file", counts);
    return;
  }
  if (what.kind == DpuNameKind::kBad) {
    SetAside(name, std::string(what.reason), counts);
    return;
  }
  if (st.st_size > options_.max_bytes) {
    SetAside(name, fmt::format("{} bytes: a .dpu trigger is an empty file", st.st_size), counts);
    return;
  }
  if (respect_settle) {
    const auto age_ms =
        absl::ToUnixMillis(absl::Now()) -
        (static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000);
    if (age_ms < options_.settle.count()) return;  // maybe still being written
  }
  Log()->info("distmgr inbox: found {} (DP {})", name, what.dpid);
  absl::Status result = handler_(what.dpid);
  if (result.ok()) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      Log()->warn("distmgr inbox: handled '{}' but cannot remove it: {}", name,
                  std::strerror(errno));
    }
    ++counts->handled;
    return;
  }
  if (result.code() == absl::StatusCode::kNotFound ||
      result.code() == absl::StatusCode::kFailedPrecondition) {
    SetAside(name, std::string(result.message()), counts);
    return;
  }
  Log()->warn("distmgr inbox: '{}' kept for the next scan: {}", name, result.message());
  ++counts->kept;
}

}  // namespace dpr::distmgr
