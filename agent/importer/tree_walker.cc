#include "agent/importer/tree_walker.h"

#include <fcntl.h>

#include <algorithm>
#include <set>

#include "absl/strings/escaping.h"
#include "agent/contentlib/content_hash.h"
#include "common/status/fmt_absl.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"

namespace dpr::importer {
namespace {

constexpr size_t kMaxName = 255;
constexpr size_t kMaxPath = 4096;

absl::Status Refuse(const std::string& rel, std::string_view why) {
  return absl::FailedPreconditionError(fmt::format("'{}': {}", absl::CEscape(rel), why));
}

std::u16string UpperKey(std::string_view name) {
  auto u16 = contentlib::Utf8ToUtf16(name);
  std::u16string out = u16.ok() ? *u16 : std::u16string();
  for (auto& c : out) c = contentlib::ToUpper16(c);
  return out;
}

struct Walker {
  FileSystem* fs;
  WalkedTree tree;
  dev_t root_dev = 0;

  absl::Status WalkDir(int dirfd, size_t index) {
    ASSIGN_OR_RETURN(auto entries, fs->ReadDir(dirfd));
    std::set<std::u16string> seen;
    const std::string prefix = tree.dirs[index].rel.empty() ? "" : tree.dirs[index].rel + "/";
    std::vector<std::pair<std::string, struct stat>> subdirs;
    for (const auto& e : entries) {
      const std::string rel = prefix + e.name;
      if (auto st = CheckName(e.name); !st.ok()) return Refuse(rel, std::string(st.message()));
      if (rel.size() > kMaxPath)
        return Refuse(rel, fmt::format("path longer than {} bytes", kMaxPath));
      if (!seen.insert(UpperKey(e.name)).second) {
        return Refuse(rel, "another entry in the same folder differs from it only in case");
      }
      struct stat st {};
      RETURN_IF_ERROR(fs->FstatAt(dirfd, e.name, &st, AT_SYMLINK_NOFOLLOW));
      if (S_ISLNK(st.st_mode)) return Refuse(rel, "a symbolic link (not followed)");
      if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) return Refuse(rel, "a device file");
      if (S_ISFIFO(st.st_mode)) return Refuse(rel, "a FIFO");
      if (S_ISSOCK(st.st_mode)) return Refuse(rel, "a socket");
      if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return Refuse(rel, "not a file or folder");
      if (st.st_dev != root_dev)
        return Refuse(rel, "on another filesystem mounted inside the package");
      if (S_ISDIR(st.st_mode)) {
        subdirs.emplace_back(e.name, st);
        continue;
      }
      WalkedFile f;
      f.rel = rel;
      f.dir = index;
      f.name = e.name;
      f.size = static_cast<uint64_t>(st.st_size);
      f.mtime_ns = MtimeNs(st);
      f.mode = st.st_mode;
      f.dev = st.st_dev;
      f.ino = st.st_ino;
      f.nlink = st.st_nlink;
      tree.bytes += f.size;
      tree.files.push_back(std::move(f));
    }
    for (const auto& [name, st] : subdirs) {
      const size_t child = tree.dirs.size();
      tree.dirs.push_back({prefix + name, index, name, st.st_dev, st.st_ino});
      ASSIGN_OR_RETURN(int fd, fs->OpenAt(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
      ScopedFd sub(fs, fd);
      struct stat now {};
      RETURN_IF_ERROR(fs->Fstat(fd, &now));
      if (now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
        return Refuse(tree.dirs[child].rel, "changed while being walked");
      }
      RETURN_IF_ERROR(WalkDir(fd, child));
    }
    return absl::OkStatus();
  }
};

}  // namespace

absl::Status CheckName(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("empty name");
  if (name.size() > kMaxName) {
    return absl::InvalidArgumentError(fmt::format("name longer than {} bytes", kMaxName));
  }
  if (name == "." || name == "..") return absl::InvalidArgumentError("'.' or '..'");
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) return absl::InvalidArgumentError("a control character in the name");
    if (std::string_view("\\/:*?\"<>|").find(c) != std::string_view::npos) {
      return absl::InvalidArgumentError(
          fmt::format("'{}' in the name (not allowed on Windows)", c));
    }
  }
  if (name.back() == ' ' || name.back() == '.') {
    return absl::InvalidArgumentError("the name ends in a space or a dot (not allowed on Windows)");
  }
  if (auto u16 = contentlib::Utf8ToUtf16(name); !u16.ok()) {
    return absl::InvalidArgumentError("the name is not valid UTF-8");
  }
  return absl::OkStatus();
}

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
}

absl::StatusOr<WalkedTree> WalkPackage(FileSystem* fs, int root_fd) {
  Walker w{fs, {}, 0};
  struct stat st {};
  RETURN_IF_ERROR(fs->Fstat(root_fd, &st));
  if (!S_ISDIR(st.st_mode))
    return absl::FailedPreconditionError("the package location is not a folder");
  w.root_dev = st.st_dev;
  w.tree.dirs.push_back({"", 0, "", st.st_dev, st.st_ino});
  RETURN_IF_ERROR(w.WalkDir(root_fd, 0));
  return std::move(w.tree);
}

absl::StatusOr<std::shared_ptr<ScopedFd>> WalkedDirs::Get(size_t index) {
  // The clean-up asks for a file's folder once per file.
  if (!open_.empty() && open_.back().first == index) return open_.back().second;
  std::vector<size_t> path;  // index, its parent, ..., the root (0)
  for (size_t i = index;; i = tree_.dirs[i].parent) {
    path.push_back(i);
    if (i == 0) break;
  }
  std::reverse(path.begin(), path.end());
  size_t kept = 0;
  while (kept < open_.size() && kept < path.size() && open_[kept].first == path[kept]) ++kept;
  open_.erase(open_.begin() + static_cast<std::ptrdiff_t>(kept), open_.end());
  for (size_t k = kept; k < path.size(); ++k) {
    if (k == 0) {  // a descriptor of our own for the root
      ASSIGN_OR_RETURN(int fd, fs_->OpenAt(root_fd_, ".", O_RDONLY | O_DIRECTORY));
      open_.emplace_back(0, std::make_shared<ScopedFd>(fs_, fd));
      continue;
    }
    const WalkedDir& d = tree_.dirs[path[k]];
    ASSIGN_OR_RETURN(int fd, fs_->OpenAt(open_.back().second->get(), d.name,
                                         O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    auto opened = std::make_shared<ScopedFd>(fs_, fd);
    struct stat st {};
    RETURN_IF_ERROR(fs_->Fstat(fd, &st));
    if (st.st_dev != d.dev || st.st_ino != d.ino) {
      return Refuse(d.rel, "folder was replaced during the import");
    }
    open_.emplace_back(path[k], std::move(opened));
  }
  return open_.back().second;
}

}  // namespace dpr::importer
