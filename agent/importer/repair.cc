#include "agent/importer/repair.h"

#include <fcntl.h>

#include <filesystem>
#include <map>
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

absl::StatusOr<RepairReport> RepairFromLegacy(contentlib::ContentLibrary& lib,
                                              const std::vector<Sha256Digest>& damaged,
                                              const std::string& legacy_root) {
  namespace fs = std::filesystem;
  RepairReport report;
  report.damaged = damaged.size();
  if (damaged.empty()) return report;
  // Only files of a recorded size are read, unless some size is unknown.
  std::set<Sha256Digest> wanted(damaged.begin(), damaged.end());
  std::set<uint64_t> sizes;
  bool any_size = false;
  for (const auto& h : damaged) {
    ASSIGN_OR_RETURN(auto size, lib.RecordedObjectSize(h));
    if (size) {
      sizes.insert(*size);
    } else {
      any_size = true;
    }
  }
  std::error_code ec;
  fs::recursive_directory_iterator it(legacy_root, fs::directory_options::none, ec);
  if (ec) {
    return absl::NotFoundError(
        fmt::format("cannot read legacy root '{}': {}", legacy_root, ec.message()));
  }
  std::vector<uint8_t> buf(1 << 20);
  for (; it != fs::recursive_directory_iterator() && !wanted.empty(); it.increment(ec)) {
    if (ec) break;
    const auto st = it->symlink_status(ec);
    if (ec || !fs::is_regular_file(st)) continue;
    const std::string path = it->path().string();
    const std::string name = it->path().filename().string();
    if (name.find(kTempInfix) != std::string::npos) continue;
    const uint64_t size = it->file_size(ec);
    if (ec || (!any_size && !sizes.count(size))) continue;
    auto fd = lib.fs()->OpenAt(AT_FDCWD, path, O_RDONLY | O_NOFOLLOW);
    if (!fd.ok()) continue;  // unreadable: not a copy we can use
    ScopedFd f(lib.fs(), *fd);
    auto digest = HashFile(lib.fs(), *fd, buf);
    ++report.files_hashed;
    if (!digest.ok()) continue;  // unreadable: not a copy we can use
    const Sha256Digest hash = *digest;
    if (!wanted.count(hash)) continue;
    ASSIGN_OR_RETURN(bool replaced, lib.ReplaceObject(*fd, hash));
    if (!replaced) continue;  // changed since it was hashed
    wanted.erase(hash);
    report.repaired.push_back(ToHex(hash));
    report.sources.push_back(path);
  }
  for (const auto& h : wanted) report.unrepaired.push_back(ToHex(h));
  return report;
}

}  // namespace dpr::importer
