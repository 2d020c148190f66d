// distmgr's inbox (inboxes/distmgr.box): wakes on inotify when a file is
// closed or renamed in, and also scans on a timer, so a .dpu that arrived
// while the controller was down, or during an inotify overflow, is still
// handled. A valid <DPID>.dpu goes to the handler and is removed only once
// the handler has taken it; a bad or unknown one is logged and moved to
// distmgr.box/bad/; a failing handler leaves it for the next scan.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dpr::distmgr {

struct InboxOptions {
  std::string dir;
  std::chrono::milliseconds scan_interval{5000};
  // A file seen by a scan but younger than this may still be being written
  // by a tool that writes in place: it waits for the next scan.
  std::chrono::milliseconds settle{1000};
  // The trigger is an empty file; anything big is not one of ours.
  int64_t max_bytes = 4096;
};

// What the handler says about a DPID: OK (taken, remove the file),
// NotFound or FailedPrecondition (set aside with the reason), anything else
// (transient: keep it for the next scan).
using DpuHandler = std::function<absl::Status(int64_t dpid)>;

struct InboxCounts {
  int64_t handled = 0;
  int64_t set_aside = 0;
  int64_t kept = 0;
};

class Inbox {
 public:
  Inbox(InboxOptions options, DpuHandler handler);
  ~Inbox();
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  absl::Status Start();
  void Stop();
  // One full pass over the folder (also what the timer runs).
  InboxCounts ScanOnce(bool respect_settle = true);

 private:
  void Loop();
  // Handles one name; updates counts.
  void HandleName(const std::string& name, bool respect_settle, InboxCounts* counts);
  void SetAside(const std::string& name, const std::string& reason, InboxCounts* counts);

  InboxOptions options_;
  DpuHandler handler_;
  int inotify_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace dpr::distmgr
