// All file I/O of the content library and the importer goes through this
// interface (as LevelDB's Env), so tests can substitute a fault-injecting
// fake: failed renames, ENOSPC, EIO on fsync, and power loss that drops
// whatever was not yet synced. Calls mirror the *at() system calls; paths
// are relative to a directory fd (or absolute with AT_FDCWD) so traversal
// never re-resolves a path string. Errors carry the system call, the path
// and strerror; callers add what they were doing.
//
// Thread-safety: implementations are safe to call from several threads.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/hash/sha256.h"

namespace dpr {

// Alignment this code uses for O_DIRECT buffers, offsets and lengths: a
// multiple of every logical block size in use (512 and 4096).
inline constexpr size_t kDirectIoAlign = 4096;

struct DirEntry {
  std::string name;
  unsigned char type;  // DT_REG, DT_DIR, DT_LNK, ... (DT_UNKNOWN: ask FstatAt)
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  virtual absl::StatusOr<int> OpenAt(int dirfd, const std::string& path, int flags,
                                     mode_t mode = 0) = 0;
  // As OpenAt, but a missing file is -1, not an error (no message is built:
  // this is on the hot path of "is this object already stored?").
  virtual absl::StatusOr<int> OpenIfExists(int dirfd, const std::string& path, int flags) = 0;
  virtual absl::Status Close(int fd) = 0;
  // Reads up to `n` bytes at `offset`; 0 at end of file.
  virtual absl::StatusOr<size_t> PRead(int fd, void* buf, size_t n, uint64_t offset) = 0;
  // Writes all `n` bytes at `offset`.
  virtual absl::Status PWriteAll(int fd, const void* buf, size_t n, uint64_t offset) = 0;
  virtual absl::Status Fsync(int fd) = 0;
  // Starts writing `fd`'s dirty pages to disk without waiting, so I/O
  // overlaps other work. Promises nothing about durability.
  virtual absl::Status StartWriteback(int fd) = 0;
  // Turns O_DIRECT on or off for later writes through `fd`: bulk bytes then
  // go from the caller's buffer to the disk without a page-cache copy or a
  // writeback pass. Buffer, offset and length must then be multiples of
  // kDirectIoAlign. Not durable by itself (the disk's cache still needs the
  // sync). Fails (InvalidArgument) where the filesystem has no direct I/O.
  virtual absl::Status SetDirectIo(int fd, bool on) = 0;
  // Flushes the whole filesystem holding `fd` (one call instead of an fsync
  // per small file).
  virtual absl::Status SyncFs(int fd) = 0;
  virtual absl::Status Fstat(int fd, struct stat* st) = 0;
  virtual absl::Status FstatAt(int dirfd, const std::string& path, struct stat* st, int flags) = 0;
  // As FstatAt(AT_SYMLINK_NOFOLLOW), but a missing entry is false.
  virtual absl::StatusOr<bool> StatIfExists(int dirfd, const std::string& path,
                                            struct stat* st) = 0;
  virtual absl::Status MkdirAt(int dirfd, const std::string& path, mode_t mode) = 0;
  // flags: 0 or RENAME_NOREPLACE / RENAME_EXCHANGE (renameat2).
  virtual absl::Status RenameAt(int old_dirfd, const std::string& old_path, int new_dirfd,
                                const std::string& new_path, unsigned flags = 0) = 0;
  virtual absl::Status LinkAt(int old_dirfd, const std::string& old_path, int new_dirfd,
                              const std::string& new_path) = 0;
  // Links the open file `fd` (not a name that could have been swapped since
  // it was opened) as `new_path`.
  virtual absl::Status LinkFd(int fd, int new_dirfd, const std::string& new_path) = 0;
  // flags: 0 or AT_REMOVEDIR.
  virtual absl::Status UnlinkAt(int dirfd, const std::string& path, int flags) = 0;
  // Entries of an open directory, without "." and "..", in no set order.
  virtual absl::StatusOr<std::vector<DirEntry>> ReadDir(int dirfd) = 0;
  virtual absl::Status StatVfs(int fd, struct statvfs* out) = 0;
  // Takes an advisory lock (flock) on `fd` without waiting, exclusive or
  // shared; it lasts until the fd is closed. Unavailable when another open
  // file holds a conflicting one; OK without a lock where the filesystem has
  // no locks (ENOLCK, EINVAL, EOPNOTSUPP).
  virtual absl::Status TryLock(int fd, bool exclusive) = 0;
};

// The real thing. The returned object lives for the whole process.
FileSystem* PosixFileSystem();

// The path an open fd refers to (from /proc/self/fd), for error messages;
// "fd N" if it cannot be read.
std::string FdPath(int fd);

// SHA-256 of everything `fd` holds from offset 0, read through `buf` (its
// size is the block size); *bytes, if given, gets the length read.
absl::StatusOr<Sha256Digest> HashFile(FileSystem* fs, int fd, std::vector<uint8_t>& buf,
                                      uint64_t* bytes = nullptr);

// Closes an fd of `fs` on scope exit.
class ScopedFd {
 public:
  ScopedFd() = default;
  ScopedFd(FileSystem* fs, int fd) : fs_(fs), fd_(fd) {}
  ScopedFd(ScopedFd&& o) noexcept : fs_(o.fs_), fd_(o.fd_) { o.fd_ = -1; }
  ScopedFd& operator=(ScopedFd&& o) noexcept {
    if (this != &o) {
      Reset();
      fs_ = o.fs_;
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  ~ScopedFd() { Reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes now, reporting a close error (which can carry a delayed write error).
  absl::Status Close();
  void Reset();

 private:
  FileSystem* fs_ = nullptr;
  int fd_ = -1;
};

}  // namespace dpr
