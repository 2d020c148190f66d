#include "agent/importer/repair.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <set>

#include "agent/contentlib/library_layout.h"
#include "common/fs/durable_file.h"
#include "common/hash/sha256.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"

namespace dpr::importer {

using contentlib::VerifyProblem;

std::vector<Sha256Digest> DamagedObjects(const std::vector<VerifyProblem>& problems) {
  std::set<Sha256Digest> out;
  for (const auto& p : problems) {
    if (p.kind != VerifyProblem::Kind::kHashMismatch &&
        p.kind != VerifyProblem::Kind::kSizeMismatch &&
        p.kind != VerifyProblem::Kind::kMissingObject) {
      continue;
    }
    if (p.path.rfind("FileLib/", 0) != 0) continue;  // a DataLib record, not an object
    std::string name = p.path.substr(p.path.rfind('/') + 1);
    if (name.size() > 4 && name.ends_with(".INI")) name.resize(name.size() - 4);
    if (auto hash = ParseHexDigest(name); hash.ok()) out.insert(*hash);
  }
  return {out.begin(), out.end()};
}

namespace {

constexpr size_t kUnreadableNamed = 3;

class Search {
 public:
  Search(contentlib::ContentLibrary& lib, const RepairOptions& options, RepairReport& report)
      : lib_(lib), fs_(lib.fs()), options_(options), report_(report) {}

  absl::Status Init(const std::vector<Sha256Digest>& damaged) {
    wanted_.insert(damaged.begin(), damaged.end());
    // Only files of a recorded size are read, unless some size is unknown.
    for (const auto& h : damaged) {
      ASSIGN_OR_RETURN(auto size, lib_.RecordedObjectSize(h));
      if (size) {
        sizes_.insert(*size);
      } else {
        any_size_ = true;
      }
    }
    return absl::OkStatus();
  }

  // Depth first, one folder open at a time: a deep legacy tree needs no more
  // descriptors than a flat one.
  absl::Status Run(const std::string& root) {
    std::vector<std::string> folders{root};
    while (!folders.empty() && !wanted_.empty()) {
      if (Stopped()) return Cancelled();
      const std::string dir = std::move(folders.back());
      folders.pop_back();
      // The legacy root may be a symlink (a configured path); below it none
      // is followed.
      const int flags = O_RDONLY | O_DIRECTORY | (dir == root ? 0 : O_NOFOLLOW);
      auto fd = fs_->OpenAt(AT_FDCWD, dir, flags);
      if (!fd.ok() && dir == root) {
        return Annotate(fd.status(), fmt::format("cannot read legacy root '{}'", root));
      }
      if (!fd.ok()) {
        Unreadable(dir);
        continue;
      }
      ScopedFd d(fs_, *fd);
      auto entries = fs_->ReadDir(*fd);
      if (!entries.ok()) {
        if (dir == root) {
          return Annotate(entries.status(), fmt::format("cannot read legacy root '{}'", root));
        }
        Unreadable(dir);
        continue;
      }
      for (const auto& e : *entries) {
        if (wanted_.empty()) break;
        const std::string path = dir + "/" + e.name;
        if (e.type == DT_DIR) {
          folders.push_back(path);
          continue;
        }
        if (e.type != DT_REG && e.type != DT_UNKNOWN) continue;
        struct stat st {};
        if (!fs_->FstatAt(*fd, e.name, &st, AT_SYMLINK_NOFOLLOW).ok()) continue;
        if (S_ISDIR(st.st_mode)) {
          folders.push_back(path);
          continue;
        }
        if (!S_ISREG(st.st_mode)) continue;
        ++report_.files_seen;
        const auto size = static_cast<uint64_t>(st.st_size);
        if (e.name.find(kTempInfix) == std::string::npos && (any_size_ || sizes_.count(size))) {
          if (Stopped()) return Cancelled();
          RETURN_IF_ERROR(TryCopy(*fd, e.name, path));
        }
        Report(false);
      }
    }
    Report(true);
    return absl::OkStatus();
  }

  const std::set<Sha256Digest>& unfound() const { return wanted_; }

 private:
  absl::Status TryCopy(int dirfd, const std::string& name, const std::string& path) {
    auto fd = fs_->OpenAt(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    if (!fd.ok()) return absl::OkStatus();  // unreadable: not a copy we can use
    ScopedFd f(fs_, *fd);
    uint64_t bytes = 0;
    auto digest = HashFile(fs_, *fd, buf_, &bytes);
    ++report_.files_hashed;
    report_.bytes_hashed += bytes;
    if (!digest.ok() || !wanted_.count(*digest)) return absl::OkStatus();
    ASSIGN_OR_RETURN(bool replaced, lib_.ReplaceObject(*fd, *digest));
    if (!replaced) return absl::OkStatus();  // changed since it was hashed
    wanted_.erase(*digest);
    report_.repaired.push_back(ToHex(*digest));
    report_.sources.push_back(path);
    return absl::OkStatus();
  }

  void Unreadable(const std::string& dir) {
    if (++report_.folders_unreadable <= kUnreadableNamed) report_.unreadable.push_back(dir);
  }
  bool Stopped() const { return options_.stop && options_.stop(); }
  static absl::Status Cancelled() {
    return absl::CancelledError("repair cancelled: its caller is gone");
  }

  void Report(bool last) {
    if (!options_.progress) return;
    // Every file would be a call; a few hundred a second are plenty.
    if (!last && ++since_report_ < 256) return;
    since_report_ = 0;
    VerifyProgress p;
    p.phase = VerifyPhase::kRepair;
    p.objects_damaged = report_.damaged;
    p.objects_repaired = report_.repaired.size();
    p.legacy_files_seen = report_.files_seen;
    p.legacy_files_hashed = report_.files_hashed;
    p.legacy_bytes_hashed = report_.bytes_hashed;
    options_.progress(p);
  }

  contentlib::ContentLibrary& lib_;
  FileSystem* fs_;
  const RepairOptions& options_;
  RepairReport& report_;
  std::set<Sha256Digest> wanted_;
  std::set<uint64_t> sizes_;
  bool any_size_ = false;
  std::vector<uint8_t> buf_ = std::vector<uint8_t>(1 << 20);
  size_t since_report_ = 0;
};

}  // namespace

absl::StatusOr<RepairReport> RepairFromLegacy(contentlib::ContentLibrary& lib,
                                              const std::vector<Sha256Digest>& damaged,
                                              const std::string& legacy_root,
                                              const RepairOptions& options) {
  RepairReport report;
  report.damaged = damaged.size();
  if (damaged.empty()) return report;
  Search search(lib, options, report);
  RETURN_IF_ERROR(search.Init(damaged));
  RETURN_IF_ERROR(search.Run(legacy_root));
  for (const auto& h : search.unfound()) report.unrepaired.push_back(ToHex(h));
  return report;
}

absl::StatusOr<VerifyAndRepairReport> VerifyAndRepair(contentlib::ContentLibrary& lib,
                                                      const VerifyAndRepairOptions& options) {
  VerifyAndRepairReport out;
  auto result = lib.Verify(options.rehash, options.progress, options.stop);
  if (!result.ok()) return Annotate(result.status(), "check stopped");
  out.result = std::move(*result);
  if (!options.repair || out.result.ok()) return out;
  // A repair asked for always reports, even with nothing a legacy copy could
  // put back (only cross-references broken): its caller tells "tried" from
  // an agent that knows no repair by it.
  const auto damaged = DamagedObjects(out.result.problems);
  if (damaged.empty()) {
    out.repair.emplace();
    return out;
  }
  if (options.legacy_root.empty()) {
    return absl::FailedPreconditionError(
        "repair not started: there is no legacy root to take copies from (--legacy-root)");
  }
  if (auto st = lib.LockForWriting(); !st.ok()) return Annotate(st, "repair not started");
  RepairOptions repair_options;
  repair_options.progress = options.progress;
  repair_options.stop = options.stop;
  auto repair = RepairFromLegacy(lib, damaged, options.legacy_root, repair_options);
  if (!repair.ok()) return Annotate(repair.status(), "repair stopped");
  out.repair = std::move(*repair);
  // Nothing put back, nothing changed: a second full re-hash (hours on a
  // large DP) would only say the same.
  if (out.repair->repaired.empty()) return out;
  // What is left after the repair is what the report says.
  result =
      lib.Verify(options.rehash, InPhase(VerifyPhase::kRecheck, options.progress), options.stop);
  if (!result.ok()) return Annotate(result.status(), "check after the repair stopped");
  out.result = std::move(*result);
  return out;
}

}  // namespace dpr::importer
