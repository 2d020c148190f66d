// Walks one legacy package folder without ever leaving it. Descent is by
// openat(O_NOFOLLOW | O_DIRECTORY) from the package's own folder fd, never by
// re-resolving path strings, so a symlink or a swapped folder cannot lead
// outside. Refused, with the entry named: symlinks (in or out of the tree),
// device files, FIFOs, sockets, other filesystems mounted inside, names that
// Windows cannot hold or that are not UTF-8 (the library and its content
// hash are Windows-shaped), two names differing only in case, names over
// 255 bytes and paths over 4096.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/contentlib/file_system.h"

namespace dpr::importer {

struct WalkedDir {
  std::string rel;    // "" for the package root, else "a/b"
  size_t parent = 0;  // index in WalkedTree::dirs (root: itself)
  std::string name;   // last component
  dev_t dev = 0;
  ino_t ino = 0;
};

struct WalkedFile {
  std::string rel;  // "a/b/setup.exe"
  size_t dir = 0;   // index in WalkedTree::dirs
  std::string name;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  mode_t mode = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  nlink_t nlink = 1;
};

struct WalkedTree {
  std::vector<WalkedDir> dirs;  // dirs[0] is the root; parents before children
  std::vector<WalkedFile> files;
  uint64_t bytes = 0;
};

// st_mtim in nanoseconds, as WalkedFile::mtime_ns holds it.
int64_t MtimeNs(const struct stat& st);

// FailedPrecondition naming the refused entry ("'sub/link': a symbolic link").
absl::StatusOr<WalkedTree> WalkPackage(FileSystem* fs, int root_fd);

// The folders of a walked tree, each opened from its parent (openat,
// O_NOFOLLOW) and checked to be the one walked (same device and inode),
// kept open while on the path to the folder last asked for. A pass in walk
// order (or its reverse) opens each folder about once, and holds no more
// descriptors than the tree is deep: a package of thousands of folders, or
// thousands of levels, costs no more than it must.
class WalkedDirs {
 public:
  WalkedDirs(FileSystem* fs, int root_fd, const WalkedTree& tree)
      : fs_(fs), root_fd_(root_fd), tree_(tree) {}
  // dirs[index]; this object lets go of it at a Get of a folder not below
  // it, or at CloseAll (a caller's copy keeps it open).
  absl::StatusOr<std::shared_ptr<ScopedFd>> Get(size_t index);
  void CloseAll() { open_.clear(); }

 private:
  FileSystem* fs_;
  int root_fd_;
  const WalkedTree& tree_;
  std::vector<std::pair<size_t, std::shared_ptr<ScopedFd>>> open_;  // from the root down
};

// Whether Windows (and so the library) can hold this file or folder name.
absl::Status CheckName(std::string_view name);

}  // namespace dpr::importer
