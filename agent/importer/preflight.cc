#include "agent/importer/preflight.h"

#include <fcntl.h>
#include <sys/statvfs.h>

#include <map>
#include <set>

#include "agent/importer/tree_walker.h"
#include "common/status/fmt_absl.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"

namespace dpr::importer {
namespace {

uint64_t RoundUp(uint64_t n, uint64_t block) { return (n + block - 1) / block * block; }

// The nearest existing folder at or above `path`.
std::string ExistingAncestor(FileSystem* fs, std::string path) {
  struct stat st {};
  while (!path.empty()) {
    auto exists = fs->StatIfExists(AT_FDCWD, path, &st);
    if (exists.ok() && *exists) return path;
    auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    path = slash == 0 ? "/" : path.substr(0, slash);
  }
  return "/";
}

// The root of the filesystem holding `path`: the highest ancestor on the
// same device.
std::string MountRoot(FileSystem* fs, std::string path) {
  struct stat st {};
  if (!fs->FstatAt(AT_FDCWD, path, &st, 0).ok()) return "/";
  const dev_t dev = st.st_dev;
  while (path != "/") {
    auto slash = path.rfind('/');
    std::string parent = slash == 0 ? "/" : path.substr(0, slash);
    struct stat pst {};
    if (!fs->FstatAt(AT_FDCWD, parent, &pst, 0).ok() || pst.st_dev != dev) break;
    path = parent;
  }
  return path;
}

std::string Mib(uint64_t bytes) { return fmt::format("{:.1f} MiB", bytes / 1048576.0); }

}  // namespace

absl::StatusOr<PreflightReport> Preflight(FileSystem* fs, const std::string& content_root,
                                          const std::vector<PackageSpec>& packages,
                                          ImportMode mode) {
  PreflightReport r;
  const std::string anchor = ExistingAncestor(fs, content_root);
  ASSIGN_OR_RETURN(int anchor_fd, fs->OpenAt(AT_FDCWD, anchor, O_RDONLY | O_DIRECTORY));
  ScopedFd anchor_dir(fs, anchor_fd);
  struct stat lib_st {};
  RETURN_IF_ERROR(fs->Fstat(anchor_fd, &lib_st));
  struct statvfs vfs {};
  RETURN_IF_ERROR(fs->StatVfs(anchor_fd, &vfs));
  r.bytes_free = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  const uint64_t block = vfs.f_bsize > 0 ? vfs.f_bsize : 4096;

  const std::string root = MountRoot(fs, anchor);
  struct stat marker {};
  const std::string marker_path = (root == "/" ? "" : root) + "/NO_SMS_ON_DRIVE.SMS";
  auto has_marker = fs->StatIfExists(AT_FDCWD, marker_path, &marker);
  r.no_sms_on_drive = has_marker.ok() && *has_marker;
  if (r.no_sms_on_drive) r.no_sms_marker = marker_path;

  // Walk every package; group files by size to find possible duplicates.
  struct FileRef {
    std::string path;
    uint64_t size;
    bool copied;  // stored as a copy in the chosen mode
  };
  std::map<uint64_t, std::vector<FileRef>> by_size;
  uint64_t dirs = 0;
  r.same_filesystem = true;
  for (const PackageSpec& spec : packages) {
    PreflightPackage p;
    p.package_id = spec.package_id;
    auto fd = fs->OpenAt(AT_FDCWD, spec.location, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (!fd.ok()) {
      p.error = fd.status();
      r.packages.push_back(std::move(p));
      continue;
    }
    ScopedFd pkg_dir(fs, *fd);
    p.found = true;
    auto tree = WalkPackage(fs, *fd);
    if (!tree.ok()) {
      p.error = tree.status();
      r.packages.push_back(std::move(p));
      continue;
    }
    const bool same = tree->dirs[0].dev == lib_st.st_dev;
    r.same_filesystem &= same;
    const bool link = mode != ImportMode::kCopy && same;
    p.files = tree->files.size();
    p.bytes = tree->bytes;
    dirs += tree->dirs.size();
    for (const auto& f : tree->files) {
      by_size[f.size].push_back(
          {spec.location + "/" + f.rel, f.size, !link || f.nlink > 1 || spec.keep_package_share});
    }
    r.files_total += p.files;
    r.bytes_total += p.bytes;
    r.largest_package_bytes = std::max(r.largest_package_bytes, p.bytes);
    r.packages.push_back(std::move(p));
  }
  r.effective_mode = mode == ImportMode::kAuto
                         ? (r.same_filesystem ? ImportMode::kLink : ImportMode::kCopy)
                         : mode;

  // Unique objects: a file of unique size is one; others are told apart by
  // hash. A duplicate needs no space; a unique object needs its blocks only
  // if it is stored as a copy.
  uint64_t objects = 0, copied_bytes = 0;
  for (auto& [size, refs] : by_size) {
    if (refs.size() == 1) {
      ++objects;
      r.bytes_unique += size;
      if (refs[0].copied) copied_bytes += RoundUp(size, block);
      continue;
    }
    std::map<Sha256Digest, bool> seen;  // hash -> stored as a copy
    for (const auto& ref : refs) {
      auto digest = Sha256File(ref.path);
      if (!digest.ok()) return Annotate(digest.status(), "preflight");
      auto [it, inserted] = seen.emplace(*digest, ref.copied);
      if (inserted) {
        ++objects;
        r.bytes_unique += size;
      } else {
        it->second = it->second && ref.copied;  // one link is enough
      }
    }
    for (const auto& [_, copied] : seen) {
      if (copied) copied_bytes += RoundUp(size, block);
    }
  }
  r.bytes_duplicate = r.bytes_total - r.bytes_unique;
  // Every file's DataLib INI, every object's INI, every folder (DataLib
  // mirrors the package folders; FileLib has at most 65536 prefix folders),
  // and each package's PkgLib and DataLib INIs.
  const uint64_t small_files = r.files_total + objects + 2 * packages.size();
  const uint64_t folders = dirs + std::min<uint64_t>(objects, 65536) + 4;
  r.bytes_needed = copied_bytes + (small_files + folders) * block;

  for (const auto& p : r.packages) {
    if (!p.error.ok()) {
      r.refusal = Annotate(p.error, fmt::format("package '{}'", p.package_id));
      break;
    }
  }
  if (r.refusal.ok() && r.no_sms_on_drive) {
    r.refusal = absl::FailedPreconditionError(fmt::format(
        "'{}' marks the library's filesystem as not for ConfigMgr content; choose a content root "
        "on another drive",
        marker_path));
  }
  if (r.refusal.ok() && mode == ImportMode::kLink && !r.same_filesystem) {
    r.refusal = absl::FailedPreconditionError(
        "link mode needs the legacy folders and the library on one filesystem (use copy or auto)");
  }
  if (r.refusal.ok() && r.bytes_needed > r.bytes_free) {
    r.refusal = absl::ResourceExhaustedError(
        fmt::format("not enough space for the library on '{}': need {}, have {} ({} mode)", root,
                    Mib(r.bytes_needed), Mib(r.bytes_free), ModeName(r.effective_mode)));
  }
  r.ok = r.refusal.ok();
  return r;
}

}  // namespace dpr::importer
