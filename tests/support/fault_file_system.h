// A FileSystem that forwards to the real one and injects faults, in the
// spirit of LevelDB's FaultInjectionTestEnv:
//  - fail renames whose target, or creations whose path, contains a
//    substring (EIO, or any errno);
//  - ENOSPC once a budget of written bytes is spent;
//  - EIO from fsync/syncfs;
//  - a crash at the K-th mutating call: that call and every later one fail
//    with EIO, as if the process had died;
//  - PowerLoss(): what was not synced is lost. Two models:
//      kDropUnsynced   namespace changes since the last sync are undone in
//                      reverse order, unsynced bytes are gone;
//      kKeepNames      namespace changes stay (they reached the journal) but
//                      unsynced bytes are gone (files cut to their synced
//                      size) — ext4's delayed-allocation hazard;
//      kKeepRemovals   of the namespace changes since the last sync only
//                      the removals (unlink, rmdir) reached the disk; the
//                      creations and renames before them are undone — a
//                      filesystem free to reorder metadata writes. It
//                      catches a file deleted on the strength of a rename
//                      that was not synced yet.
// Sync points: SyncFs (everything), Fsync of a file (its bytes), Fsync of a
// folder (namespace changes inside it).
//
// Only meant for tests; not fast. Thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agent/contentlib/file_system.h"

namespace dpr::testing {

class FaultFileSystem final : public FileSystem {
 public:
  enum class PowerLossModel { kDropUnsynced, kKeepNames, kKeepRemovals };

  // `scratch` is a folder on the same filesystem as the files under test,
  // where the fake keeps copies needed to undo changes.
  explicit FaultFileSystem(std::string scratch);
  ~FaultFileSystem() override;

  void FailRenamesTo(std::string substring, int err = EIO) {
    std::lock_guard<std::mutex> l(mu_);
    fail_rename_ = std::move(substring);
    fail_rename_errno_ = err;
  }
  // Creating files whose path contains `substring` fails with `err`
  // ("": none).
  void FailCreatesOf(std::string substring, int err) {
    std::lock_guard<std::mutex> l(mu_);
    fail_create_ = std::move(substring);
    fail_create_errno_ = err;
  }
  // Opening (without creating) a path that contains `substring` fails with
  // `err` ("": none), as an unreadable folder does for anyone but root.
  void FailOpensOf(std::string substring, int err) {
    std::lock_guard<std::mutex> l(mu_);
    fail_open_ = std::move(substring);
    fail_open_errno_ = err;
  }
  void SetWriteBudget(int64_t bytes) {
    std::lock_guard<std::mutex> l(mu_);
    write_budget_ = bytes;
  }
  void FailSyncs(int err = EIO) {
    std::lock_guard<std::mutex> l(mu_);
    fail_sync_errno_ = err;
  }
  // O_DIRECT can be turned on, but writes through it fail with EINVAL, as on
  // filesystems that check alignment only at write time.
  void RefuseDirectWrites() {
    std::lock_guard<std::mutex> l(mu_);
    refuse_direct_writes_ = true;
  }
  // Every syncfs takes this much longer: widens the windows in which a
  // flush and the next batch's workers overlap.
  void SlowSyncs(int milliseconds) {
    std::lock_guard<std::mutex> l(mu_);
    sync_delay_ms_ = milliseconds;
  }
  // Called before every read, outside the fake's lock: tests slow reads of
  // one file, or change it while it is being read.
  void BeforeReads(std::function<void(int fd, uint64_t offset)> hook) {
    std::lock_guard<std::mutex> l(mu_);
    before_read_ = std::move(hook);
  }
  // Called before every write, outside the fake's lock.
  void BeforeWrites(std::function<void(int fd, uint64_t offset, size_t n)> hook) {
    std::lock_guard<std::mutex> l(mu_);
    before_write_ = std::move(hook);
  }
  uint64_t bytes_read() const { return bytes_read_.load(); }
  uint64_t bytes_written() const { return bytes_written_.load(); }
  // Crash at the k-th mutating call from now (1 = the next one); 0: never.
  void CrashAfter(int64_t k) {
    std::lock_guard<std::mutex> l(mu_);
    crash_at_ = k > 0 ? mutations_ + k : 0;
  }
  bool crashed() const {
    std::lock_guard<std::mutex> l(mu_);
    return crashed_;
  }
  int64_t mutations() const {
    std::lock_guard<std::mutex> l(mu_);
    return mutations_;
  }
  // Applies the power-loss model to the real files. Call after a crash (or
  // at any time); afterwards the fake works again with nothing unsynced.
  void PowerLoss(PowerLossModel model);

  absl::StatusOr<int> OpenAt(int dirfd, const std::string& path, int flags, mode_t mode) override;
  absl::StatusOr<int> OpenIfExists(int dirfd, const std::string& path, int flags) override;
  absl::StatusOr<bool> StatIfExists(int dirfd, const std::string& path, struct stat* st) override;
  absl::Status Close(int fd) override;
  absl::StatusOr<size_t> PRead(int fd, void* buf, size_t n, uint64_t offset) override;
  absl::Status PWriteAll(int fd, const void* buf, size_t n, uint64_t offset) override;
  absl::Status Fsync(int fd) override;
  absl::Status StartWriteback(int fd) override { return absl::OkStatus(); }
  // Forwarded: direct or not, written bytes count as unsynced until a sync.
  absl::Status SetDirectIo(int fd, bool on) override;
  absl::Status SyncFs(int fd) override;
  absl::Status Fstat(int fd, struct stat* st) override;
  absl::Status FstatAt(int dirfd, const std::string& path, struct stat* st, int flags) override;
  absl::Status MkdirAt(int dirfd, const std::string& path, mode_t mode) override;
  absl::Status RenameAt(int old_dirfd, const std::string& old_path, int new_dirfd,
                        const std::string& new_path, unsigned flags) override;
  absl::Status LinkAt(int old_dirfd, const std::string& old_path, int new_dirfd,
                      const std::string& new_path) override;
  absl::Status LinkFd(int fd, int new_dirfd, const std::string& new_path) override;
  absl::Status UnlinkAt(int dirfd, const std::string& path, int flags) override;
  absl::StatusOr<std::vector<DirEntry>> ReadDir(int dirfd) override;
  absl::Status StatVfs(int fd, struct statvfs* out) override;
  absl::Status TryLock(int fd, bool exclusive) override { return real_->TryLock(fd, exclusive); }

 private:
  // One namespace change, with what it takes to undo it.
  struct Change {
    enum Kind { kCreate, kMkdir, kRename, kExchange, kLink, kUnlink, kRmdir } kind;
    std::string path;      // absolute: created/removed/new name
    std::string old_path;  // rename/exchange source
    std::string saved;     // scratch copy of what was replaced or removed
  };
  // Bytes of a file written since its last sync.
  struct Dirty {
    int fd;  // our own descriptor of the inode
    uint64_t synced_size;
    std::string synced_bytes;  // content at the last sync when it had any
  };

  // Counts a mutation; EIO if the machine has "crashed".
  absl::Status Mutate();
  std::string Abs(int dirfd, const std::string& path);
  std::string Save(const std::string& abs);  // hard-links abs into scratch
  void SyncedAll();
  void SyncedDir(const std::string& dir);
  void MarkDirty(int fd);

  FileSystem* real_;
  std::string scratch_;
  mutable std::mutex mu_;
  std::string fail_rename_;
  int fail_rename_errno_ = EIO;
  std::string fail_create_;
  int fail_create_errno_ = 0;
  std::string fail_open_;
  int fail_open_errno_ = 0;
  int64_t write_budget_ = -1;
  int fail_sync_errno_ = 0;
  int sync_delay_ms_ = 0;
  bool refuse_direct_writes_ = false;
  std::set<int> direct_fds_;
  int64_t mutations_ = 0;
  int64_t crash_at_ = 0;
  bool crashed_ = false;
  std::function<void(int, uint64_t)> before_read_;
  std::function<void(int, uint64_t, size_t)> before_write_;
  std::atomic<uint64_t> bytes_read_{0}, bytes_written_{0};
  std::atomic<int64_t> saves_{0};  // Save() runs on the flush workers
  std::vector<Change> changes_;
  std::map<std::pair<dev_t, ino_t>, Dirty> dirty_;
};

}  // namespace dpr::testing
