#include "tests/support/fault_file_system.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <thread>

#include "common/status/status_macros.h"
#include "fmt/format.h"

namespace dpr::testing {
namespace {

std::string Parent(const std::string& abs) { return abs.substr(0, abs.rfind('/')); }

bool Exists(const std::string& abs) {
  struct stat st {};
  return ::lstat(abs.c_str(), &st) == 0;
}

absl::Status Injected(int err, std::string_view what) {
  return ErrnoError(err, fmt::format("{} (injected)", what));
}

}  // namespace

FaultFileSystem::FaultFileSystem(std::string scratch)
    : real_(PosixFileSystem()), scratch_(std::move(scratch)) {}

FaultFileSystem::~FaultFileSystem() {
  for (auto& [_, d] : dirty_) ::close(d.fd);
}

absl::Status FaultFileSystem::Mutate() {
  std::lock_guard<std::mutex> l(mu_);
  if (crashed_) return Injected(EIO, "the machine is down");
  ++mutations_;
  if (crash_at_ != 0 && mutations_ >= crash_at_) {
    crashed_ = true;
    return Injected(EIO, "crash point");
  }
  return absl::OkStatus();
}

std::string FaultFileSystem::Abs(int dirfd, const std::string& path) {
  if (!path.empty() && path.front() == '/') return path;
  if (dirfd == AT_FDCWD) {
    char cwd[4096];
    return std::string(::getcwd(cwd, sizeof cwd) ? cwd : ".") + "/" + path;
  }
  return FdPath(dirfd) + "/" + path;
}

std::string FaultFileSystem::Save(const std::string& abs) {
  const std::string saved = fmt::format("{}/saved.{}", scratch_, saves_++);
  struct stat st {};
  if (::lstat(abs.c_str(), &st) != 0) return "";
  if (S_ISDIR(st.st_mode)) {
    // Only empty folders are removed by the code under test (rmdir).
    ::mkdir(saved.c_str(), st.st_mode & 0777);
    return saved;
  }
  if (::link(abs.c_str(), saved.c_str()) != 0) return "";
  return saved;
}

void FaultFileSystem::MarkDirty(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return;
  auto key = std::make_pair(st.st_dev, st.st_ino);
  std::lock_guard<std::mutex> l(mu_);
  if (dirty_.count(key)) return;
  Dirty d{::dup(fd), static_cast<uint64_t>(st.st_size), ""};
  if (st.st_size > 0 && st.st_size < (1 << 20)) {
    d.synced_bytes.resize(static_cast<size_t>(st.st_size));
    ssize_t n = ::pread(fd, d.synced_bytes.data(), d.synced_bytes.size(), 0);
    d.synced_bytes.resize(n > 0 ? static_cast<size_t>(n) : 0);
  }
  dirty_.emplace(key, std::move(d));
}

void FaultFileSystem::SyncedAll() {
  std::lock_guard<std::mutex> l(mu_);
  changes_.clear();
  for (auto& [_, d] : dirty_) ::close(d.fd);
  dirty_.clear();
}

void FaultFileSystem::SyncedDir(const std::string& dir) {
  std::lock_guard<std::mutex> l(mu_);
  std::erase_if(changes_, [&](const Change& c) {
    return Parent(c.path) == dir && (c.old_path.empty() || Parent(c.old_path) == dir);
  });
}

absl::StatusOr<int> FaultFileSystem::OpenAt(int dirfd, const std::string& path, int flags,
                                            mode_t mode) {
  if (!(flags & O_CREAT)) {
    std::lock_guard<std::mutex> l(mu_);
    if (!fail_open_.empty()) {
      const std::string abs = Abs(dirfd, path);
      if (abs.find(fail_open_) != std::string::npos) {
        return Injected(fail_open_errno_, fmt::format("open '{}'", abs));
      }
    }
  }
  if (!(flags & O_CREAT)) return real_->OpenAt(dirfd, path, flags, mode);
  RETURN_IF_ERROR(Mutate());
  const std::string abs = Abs(dirfd, path);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!fail_create_.empty() && abs.find(fail_create_) != std::string::npos) {
      return Injected(fail_create_errno_, fmt::format("open '{}'", abs));
    }
  }
  const bool existed = Exists(abs);
  ASSIGN_OR_RETURN(int fd, real_->OpenAt(dirfd, path, flags, mode));
  if (!existed) {
    std::lock_guard<std::mutex> l(mu_);
    changes_.push_back({Change::kCreate, abs, "", ""});
  }
  return fd;
}

absl::Status FaultFileSystem::Close(int fd) {
  {
    std::lock_guard<std::mutex> l(mu_);
    direct_fds_.erase(fd);
  }
  return real_->Close(fd);
}

absl::Status FaultFileSystem::SetDirectIo(int fd, bool on) {
  RETURN_IF_ERROR(real_->SetDirectIo(fd, on));
  std::lock_guard<std::mutex> l(mu_);
  if (on) {
    direct_fds_.insert(fd);
  } else {
    direct_fds_.erase(fd);
  }
  return absl::OkStatus();
}

absl::StatusOr<int> FaultFileSystem::OpenIfExists(int dirfd, const std::string& path, int flags) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (crashed_) return Injected(EIO, "the machine is down");
  }
  return real_->OpenIfExists(dirfd, path, flags);
}

absl::StatusOr<bool> FaultFileSystem::StatIfExists(int dirfd, const std::string& path,
                                                   struct stat* st) {
  return real_->StatIfExists(dirfd, path, st);
}

absl::StatusOr<size_t> FaultFileSystem::PRead(int fd, void* buf, size_t n, uint64_t offset) {
  std::function<void(int, uint64_t)> hook;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (crashed_) return Injected(EIO, "the machine is down");
    hook = before_read_;
  }
  if (hook) hook(fd, offset);
  ASSIGN_OR_RETURN(size_t got, real_->PRead(fd, buf, n, offset));
  bytes_read_ += got;
  return got;
}

absl::Status FaultFileSystem::PWriteAll(int fd, const void* buf, size_t n, uint64_t offset) {
  std::function<void(int, uint64_t, size_t)> hook;
  {
    std::lock_guard<std::mutex> l(mu_);
    hook = before_write_;
  }
  if (hook) hook(fd, offset, n);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (refuse_direct_writes_ && direct_fds_.count(fd)) {
      return Injected(EINVAL, fmt::format("direct write '{}'", FdPath(fd)));
    }
  }
  RETURN_IF_ERROR(Mutate());
  {
    std::lock_guard<std::mutex> l(mu_);
    if (write_budget_ >= 0) {
      if (static_cast<int64_t>(n) > write_budget_) {
        write_budget_ = 0;
        return Injected(ENOSPC, fmt::format("write '{}'", FdPath(fd)));
      }
      write_budget_ -= static_cast<int64_t>(n);
    }
  }
  MarkDirty(fd);
  RETURN_IF_ERROR(real_->PWriteAll(fd, buf, n, offset));
  bytes_written_ += n;
  return absl::OkStatus();
}

absl::Status FaultFileSystem::Fsync(int fd) {
  RETURN_IF_ERROR(Mutate());
  {
    std::lock_guard<std::mutex> l(mu_);
    if (fail_sync_errno_ != 0)
      return Injected(fail_sync_errno_, fmt::format("fsync '{}'", FdPath(fd)));
  }
  RETURN_IF_ERROR(real_->Fsync(fd));
  struct stat st {};
  if (::fstat(fd, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      SyncedDir(FdPath(fd));
    } else {
      std::lock_guard<std::mutex> l(mu_);
      auto it = dirty_.find({st.st_dev, st.st_ino});
      if (it != dirty_.end()) {
        ::close(it->second.fd);
        dirty_.erase(it);
      }
    }
  }
  return absl::OkStatus();
}

absl::Status FaultFileSystem::SyncFs(int fd) {
  RETURN_IF_ERROR(Mutate());
  int delay_ms = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (fail_sync_errno_ != 0) return Injected(fail_sync_errno_, "syncfs");
    delay_ms = sync_delay_ms_;
  }
  if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
  RETURN_IF_ERROR(real_->SyncFs(fd));
  SyncedAll();
  return absl::OkStatus();
}

absl::Status FaultFileSystem::Fstat(int fd, struct stat* st) { return real_->Fstat(fd, st); }
absl::Status FaultFileSystem::FstatAt(int dirfd, const std::string& path, struct stat* st,
                                      int flags) {
  return real_->FstatAt(dirfd, path, st, flags);
}

absl::Status FaultFileSystem::MkdirAt(int dirfd, const std::string& path, mode_t mode) {
  RETURN_IF_ERROR(Mutate());
  const std::string abs = Abs(dirfd, path);
  RETURN_IF_ERROR(real_->MkdirAt(dirfd, path, mode));
  std::lock_guard<std::mutex> l(mu_);
  changes_.push_back({Change::kMkdir, abs, "", ""});
  return absl::OkStatus();
}

absl::Status FaultFileSystem::RenameAt(int old_dirfd, const std::string& old_path, int new_dirfd,
                                       const std::string& new_path, unsigned flags) {
  RETURN_IF_ERROR(Mutate());
  const std::string from = Abs(old_dirfd, old_path), to = Abs(new_dirfd, new_path);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!fail_rename_.empty() && to.find(fail_rename_) != std::string::npos) {
      return Injected(fail_rename_errno_, fmt::format("rename '{}' to '{}'", from, to));
    }
  }
  std::string saved;
  if (!(flags & RENAME_EXCHANGE) && Exists(to) && !(flags & RENAME_NOREPLACE)) saved = Save(to);
  RETURN_IF_ERROR(real_->RenameAt(old_dirfd, old_path, new_dirfd, new_path, flags));
  std::lock_guard<std::mutex> l(mu_);
  changes_.push_back(
      {(flags & RENAME_EXCHANGE) ? Change::kExchange : Change::kRename, to, from, saved});
  return absl::OkStatus();
}

absl::Status FaultFileSystem::LinkAt(int old_dirfd, const std::string& old_path, int new_dirfd,
                                     const std::string& new_path) {
  RETURN_IF_ERROR(Mutate());
  const std::string to = Abs(new_dirfd, new_path);
  RETURN_IF_ERROR(real_->LinkAt(old_dirfd, old_path, new_dirfd, new_path));
  std::lock_guard<std::mutex> l(mu_);
  changes_.push_back({Change::kLink, to, "", ""});
  return absl::OkStatus();
}

absl::Status FaultFileSystem::LinkFd(int fd, int new_dirfd, const std::string& new_path) {
  RETURN_IF_ERROR(Mutate());
  const std::string to = Abs(new_dirfd, new_path);
  RETURN_IF_ERROR(real_->LinkFd(fd, new_dirfd, new_path));
  std::lock_guard<std::mutex> l(mu_);
  changes_.push_back({Change::kLink, to, "", ""});
  return absl::OkStatus();
}

absl::Status FaultFileSystem::UnlinkAt(int dirfd, const std::string& path, int flags) {
  RETURN_IF_ERROR(Mutate());
  const std::string abs = Abs(dirfd, path);
  const std::string saved = Save(abs);
  absl::Status s = real_->UnlinkAt(dirfd, path, flags);
  if (!s.ok()) {
    if (!saved.empty()) (flags & AT_REMOVEDIR) ? ::rmdir(saved.c_str()) : ::unlink(saved.c_str());
    return s;
  }
  std::lock_guard<std::mutex> l(mu_);
  changes_.push_back({(flags & AT_REMOVEDIR) ? Change::kRmdir : Change::kUnlink, abs, "", saved});
  return absl::OkStatus();
}

absl::StatusOr<std::vector<DirEntry>> FaultFileSystem::ReadDir(int dirfd) {
  return real_->ReadDir(dirfd);
}
absl::Status FaultFileSystem::StatVfs(int fd, struct statvfs* out) {
  return real_->StatVfs(fd, out);
}

void FaultFileSystem::PowerLoss(PowerLossModel model) {
  std::lock_guard<std::mutex> l(mu_);
  // Unsynced bytes are lost in both models: back to the synced content.
  for (auto& [_, d] : dirty_) {
    if (::ftruncate(d.fd, static_cast<off_t>(d.synced_size)) == 0 && !d.synced_bytes.empty()) {
      (void)!::pwrite(d.fd, d.synced_bytes.data(), d.synced_bytes.size(), 0);
    }
    ::fsync(d.fd);
    ::close(d.fd);
  }
  dirty_.clear();
  if (model != PowerLossModel::kKeepNames) {
    const bool keep_removals = model == PowerLossModel::kKeepRemovals;
    for (auto it = changes_.rbegin(); it != changes_.rend(); ++it) {
      const Change& c = *it;
      if (keep_removals && (c.kind == Change::kUnlink || c.kind == Change::kRmdir)) {
        if (!c.saved.empty()) {
          (c.kind == Change::kRmdir) ? ::rmdir(c.saved.c_str()) : ::unlink(c.saved.c_str());
        }
        continue;
      }
      switch (c.kind) {
        case Change::kCreate:
        case Change::kLink:
          ::unlink(c.path.c_str());
          break;
        case Change::kMkdir:
          ::rmdir(c.path.c_str());
          break;
        case Change::kRename:
          ::rename(c.path.c_str(), c.old_path.c_str());
          if (!c.saved.empty()) ::rename(c.saved.c_str(), c.path.c_str());
          break;
        case Change::kExchange:
          ::renameat2(AT_FDCWD, c.path.c_str(), AT_FDCWD, c.old_path.c_str(), RENAME_EXCHANGE);
          break;
        case Change::kUnlink:
          if (!c.saved.empty()) ::rename(c.saved.c_str(), c.path.c_str());
          break;
        case Change::kRmdir:
          ::mkdir(c.path.c_str(), 0755);
          if (!c.saved.empty()) ::rmdir(c.saved.c_str());
          break;
      }
    }
  }
  changes_.clear();
  crashed_ = false;
  crash_at_ = 0;
  ::sync();
}

}  // namespace dpr::testing
