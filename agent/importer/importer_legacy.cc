// The legacy clean-up: a committed package's walked files removed, each
// only if unchanged since the walk, and the re-run's check of a package an
// earlier run committed.
#include <fcntl.h>

#include "agent/importer/importer_internal.h"
#include "common/status/status_macros.h"

namespace dpr::importer::internal {

void Importer::RemoveLegacy(const PackageState& pkg, bool* removed, KeptNote* kept) {
  *removed = false;
  WalkedDirs dirs(fs_, pkg.root.get(), pkg.tree);
  for (const WalkedFile& f : pkg.tree.files) {
    auto dir = dirs.Get(f.dir);
    if (!dir.ok()) return;
    const int fd = (*dir)->get();
    struct stat st {};
    // Only the very file that was imported, as it was, is removed: one
    // written to since may hold bytes the library does not.
    auto found = fs_->StatIfExists(fd, f.name, &st);
    if (!found.ok()) return;
    if (!*found) continue;
    if (st.st_ino != f.ino || st.st_dev != f.dev) {
      kept->Add(f.rel, "was replaced after it was imported");
      continue;
    }
    if (static_cast<uint64_t>(st.st_size) != f.size || MtimeNs(st) != f.mtime_ns) {
      // One more link than the walk saw: this inode is its FileLib object.
      kept->Add(f.rel, st.st_nlink > f.nlink ? "changed after it was linked into FileLib "
                                               "(`dp-agent verify` will report that object "
                                               "damaged)"
                                             : "changed after it was imported");
      continue;
    }
    if (!fs_->UnlinkAt(fd, f.name, 0).ok()) return;
  }
  // A folder still holding a file (kept, or new) stays; the others go.
  bool all_gone = true;
  for (size_t i = pkg.tree.dirs.size(); i-- > 1;) {
    // Getting its parent lets go of folder i: it is not on the path there.
    auto parent = dirs.Get(pkg.tree.dirs[i].parent);
    if (!parent.ok()) return;
    if (!fs_->UnlinkAt((*parent)->get(), pkg.tree.dirs[i].name, AT_REMOVEDIR).ok()) {
      all_gone = false;
    }
  }
  if (!all_gone) {
    if (kept->empty()) kept->Set("its folder holds files that were not imported");
    return;
  }
  dirs.CloseAll();
  *removed = fs_->UnlinkAt(AT_FDCWD, pkg.spec.location, AT_REMOVEDIR).ok();
}

std::string Importer::FinishEarlierCleanUp(PackageState* pkg, bool* removed) {
  auto fd = fs_->OpenAt(AT_FDCWD, pkg->spec.location, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!fd.ok()) {
    if (absl::IsNotFound(fd.status())) return "";  // nothing left to remove
    return fmt::format("its folder could not be opened: {}", fd.status().message());
  }
  pkg->root = ScopedFd(fs_, *fd);
  auto tree = WalkPackage(fs_, *fd);
  if (!tree.ok()) return fmt::format("its folder could not be walked: {}", tree.status().message());
  pkg->tree = std::move(*tree);
  KeptNote kept;
  absl::Status checked = KeepOnlyCommittedFiles(pkg, &kept);
  if (!checked.ok()) {
    return fmt::format("its files could not be checked against the library: {}", checked.message());
  }
  RemoveLegacy(*pkg, removed, &kept);
  return kept.Text();
}

absl::Status Importer::KeepOnlyCommittedFiles(PackageState* pkg, KeptNote* kept) {
  ASSIGN_OR_RETURN(contentlib::ContentRecord record, lib_.Lookup(pkg->id));
  std::map<std::string_view, const contentlib::FileRecord*> by_rel;
  for (const auto& r : record.files) by_rel[r.rel_path] = &r;
  std::vector<WalkedFile> verified;
  std::vector<uint8_t> buf;
  WalkedDirs dirs(fs_, pkg->root.get(), pkg->tree);
  for (WalkedFile& f : pkg->tree.files) {
    auto it = by_rel.find(f.rel);
    if (it == by_rel.end()) {
      kept->Add(f.rel, "is not in the converted content");
      continue;
    }
    const contentlib::FileRecord& r = *it->second;
    if (r.size != f.size || r.time_modified != contentlib::UnixNanosToFiletime(f.mtime_ns)) {
      kept->Add(f.rel, "changed after it was converted");
      continue;
    }
    // A linked file is the object itself; a copy must hash to it.
    struct stat object {};
    ASSIGN_OR_RETURN(
        bool has_object,
        fs_->StatIfExists(lib_.lib_fd(), contentlib::FileLibObject(ToHex(r.hash)), &object));
    if (!has_object) {
      kept->Add(f.rel, "has no object in FileLib");
      continue;
    }
    if (object.st_ino != f.ino || object.st_dev != f.dev) {
      ASSIGN_OR_RETURN(std::shared_ptr<ScopedFd> dir, dirs.Get(f.dir));
      ASSIGN_OR_RETURN(
          int fd, fs_->OpenAt(dir->get(), f.name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK));
      ScopedFd file(fs_, fd);
      if (buf.empty()) buf.resize(kBlock);
      uint64_t read = 0;
      auto hash = HashFile(fs_, fd, buf, &read);
      if (!hash.ok() || read != f.size || *hash != r.hash) {
        kept->Add(f.rel, "does not hash to its converted copy");
        continue;
      }
    }
    verified.push_back(std::move(f));
  }
  pkg->tree.files = std::move(verified);
  return absl::OkStatus();
}

}  // namespace dpr::importer::internal
