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

// Opens dirs[index] by descending from root_fd one component at a time and
// checking each folder is the one walked (same device and inode).
absl::StatusOr<ScopedFd> OpenWalkedDir(FileSystem* fs, int root_fd, const WalkedTree& tree,
                                       size_t index);

// Whether Windows (and so the library) can hold this file or folder name.
absl::Status CheckName(std::string_view name);

}  // namespace dpr::importer
