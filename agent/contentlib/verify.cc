// ContentLibrary::Verify: every cross-reference of PkgLib, DataLib and
// FileLib, and (with rehash) every object's bytes against its name. Problems
// are collected and named, not fatal; only an I/O failure aborts.
#include <fcntl.h>

#include <map>
#include <set>

#include "agent/contentlib/content_hash.h"
#include "agent/contentlib/content_library.h"
#include "common/fs/durable_file.h"
#include "common/ini/ini_file.h"
#include "common/status/fmt_absl.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"

namespace dpr::contentlib {
namespace {

using Kind = VerifyProblem::Kind;

bool IsUpperHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

struct Checker {
  FileSystem* fs;
  int lib_fd;
  VerifyResult result;
  void Problem(Kind k, std::string path, std::string detail) {
    result.problems.push_back({k, std::move(path), std::move(detail)});
  }

  absl::StatusOr<std::optional<std::string>> Read(int dirfd, const std::string& name) {
    auto fd = fs->OpenAt(dirfd, name, O_RDONLY | O_NOFOLLOW);
    if (fd.status().code() == absl::StatusCode::kNotFound) return std::optional<std::string>();
    RETURN_IF_ERROR(fd.status());
    ScopedFd f(fs, *fd);
    std::string out;
    char buf[16384];
    for (;;) {
      ASSIGN_OR_RETURN(size_t n, fs->PRead(*fd, buf, sizeof buf, out.size()));
      if (n == 0) break;
      out.append(buf, n);
      if (out.size() > (1u << 20)) break;
    }
    return std::optional<std::string>(std::move(out));
  }

  absl::StatusOr<std::optional<ScopedFd>> OpenDir(const std::string& rel) {
    auto fd = fs->OpenAt(lib_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (fd.status().code() == absl::StatusCode::kNotFound) return std::optional<ScopedFd>();
    RETURN_IF_ERROR(fd.status());
    return std::optional<ScopedFd>(ScopedFd(fs, *fd));
  }
};

}  // namespace

absl::StatusOr<VerifyResult> ContentLibrary::Verify(bool rehash) {
  Checker c{fs_, lib_fd_, {}};
  ASSIGN_OR_RETURN(auto pkglib, c.OpenDir(kPkgLib));
  ASSIGN_OR_RETURN(auto datalib, c.OpenDir(kDataLib));
  ASSIGN_OR_RETURN(auto filelib, c.OpenDir(kFileLib));
  if (!pkglib) c.Problem(Kind::kMissingFolder, kPkgLib, "PkgLib folder is missing");
  if (!datalib) c.Problem(Kind::kMissingFolder, kDataLib, "DataLib folder is missing");
  if (!filelib) c.Problem(Kind::kMissingFolder, kFileLib, "FileLib folder is missing");

  // PkgLib: which contents are committed.
  std::set<std::string> committed;
  if (pkglib) {
    ASSIGN_OR_RETURN(auto entries, fs_->ReadDir(pkglib->get()));
    for (const auto& e : entries) {
      if (IsTempName(e.name)) continue;
      const std::string path = std::string(kPkgLib) + "/" + e.name;
      if (!std::string_view(e.name).ends_with(".INI") ||
          !IsValidPackageId(e.name.substr(0, e.name.size() - 4))) {
        c.Problem(Kind::kBadIni, path, "not a '<PackageID>.INI' file");
        continue;
      }
      const std::string pkg = e.name.substr(0, e.name.size() - 4);
      ++c.result.packages;
      ASSIGN_OR_RETURN(auto text, c.Read(pkglib->get(), e.name));
      auto ini = IniFile::Parse(text.value_or(""), path);
      if (!ini.ok()) {
        c.Problem(Kind::kBadIni, path, std::string(ini.status().message()));
        continue;
      }
      const auto* section = ini->FindSection("Packages");
      if (section == nullptr || section->entries.empty()) {
        c.Problem(Kind::kBadIni, path, "no [Packages] entries");
        continue;
      }
      bool version_listed = false;
      const auto version = ini->Get("Info", "Version");
      for (const auto& entry : section->entries) {
        auto id = ParseContentId(entry.key);
        if (!id.ok() || id->package_id != pkg) {
          c.Problem(Kind::kBadIni, path, fmt::format("bad content ID '{}'", entry.key));
          continue;
        }
        committed.insert(id->ToString());
        if (version && *version == std::to_string(id->version)) version_listed = true;
      }
      if (!version_listed) {
        c.Problem(Kind::kBadIni, path, "[Info] Version names no content in [Packages]");
      }
    }
  }

  // DataLib: each content's tree, content hash and the objects it uses.
  std::map<std::string, std::set<std::string>> expected_users;  // hash -> contents
  std::map<std::string, uint64_t> expected_size;
  std::set<std::string> contents;
  if (datalib) {
    ASSIGN_OR_RETURN(auto entries, fs_->ReadDir(datalib->get()));
    std::set<std::string> dirs_seen;
    for (const auto& e : entries) {
      if (IsTempName(e.name)) continue;
      if (!std::string_view(e.name).ends_with(".INI")) {
        dirs_seen.insert(e.name);
        continue;
      }
      const std::string cid = e.name.substr(0, e.name.size() - 4);
      const std::string path = std::string(kDataLib) + "/" + e.name;
      auto id = ParseContentId(cid);
      if (!id.ok()) {
        c.Problem(Kind::kBadIni, path, std::string(id.status().message()));
        continue;
      }
      contents.insert(cid);
      ++c.result.contents;
      if (!committed.count(cid)) {
        c.Problem(Kind::kOrphan, path, "content is not named in PkgLib (an interrupted import?)");
      }
      auto rec = Lookup(*id);
      if (!rec.ok()) {
        c.Problem(rec.status().code() == absl::StatusCode::kNotFound ? Kind::kMissingContent
                                                                     : Kind::kBadIni,
                  DataLibDir(*id), std::string(rec.status().message()));
        continue;
      }
      if (!IsUpperHexDigest(rec->content_hash)) {
        c.Problem(Kind::kBadIni, path, "[Info] Hash= is not 64 upper-case hex digits");
      } else {
        std::vector<HashedFile> hashed;
        for (const auto& f : rec->files) hashed.push_back({f.rel_path, f.hash});
        auto h = ComputeContentHash(rec->dirs, hashed);
        if (h.ok() && *h != rec->content_hash) {
          c.Problem(
              Kind::kContentHashMismatch, path,
              fmt::format("content hash {} does not match its files ({})", rec->content_hash, *h));
        }
      }
      for (const auto& f : rec->files) {
        const std::string hex = ToHex(f.hash);
        expected_users[hex].insert(cid);
        auto [it, inserted] = expected_size.emplace(hex, f.size);
        if (!inserted && it->second != f.size) {
          c.Problem(Kind::kSizeMismatch, DataLibDir(*id) + "/" + f.rel_path + ".INI",
                    fmt::format("Size={} but another content records {} for the same hash", f.size,
                                it->second));
        }
      }
    }
    for (const auto& d : dirs_seen) {
      if (!contents.count(d)) {
        c.Problem(Kind::kOrphan, std::string(kDataLib) + "/" + d, "folder without a content INI");
      }
    }
    for (const auto& cid : committed) {
      if (!contents.count(cid)) {
        c.Problem(Kind::kMissingContent, std::string(kDataLib) + "/" + cid + ".INI",
                  "PkgLib names this content but DataLib does not hold it");
      }
    }
  }

  // FileLib: each object, its name, bytes, size and reference list.
  std::set<std::string> objects;
  if (filelib) {
    ASSIGN_OR_RETURN(auto prefixes, fs_->ReadDir(filelib->get()));
    std::vector<uint8_t> buf(1 << 20);
    for (const auto& p : prefixes) {
      if (IsTempName(p.name)) continue;
      const std::string dir_rel = std::string(kFileLib) + "/" + p.name;
      if (p.name.size() != 4 || !IsUpperHex(p.name)) {
        c.Problem(Kind::kOrphan, dir_rel, "not a FileLib prefix folder");
        continue;
      }
      ASSIGN_OR_RETURN(auto dir, c.OpenDir(dir_rel));
      if (!dir) continue;
      ASSIGN_OR_RETURN(auto entries, fs_->ReadDir(dir->get()));
      std::set<std::string> names;
      for (const auto& e : entries) {
        if (!IsTempName(e.name)) names.insert(e.name);
      }
      for (const auto& name : names) {
        const std::string rel = dir_rel + "/" + name;
        if (std::string_view(name).ends_with(".INI")) {
          if (!names.count(name.substr(0, name.size() - 4))) {
            c.Problem(Kind::kMissingObject, rel, "reference list without its object");
          }
          continue;
        }
        if (!IsUpperHexDigest(name) || name.compare(0, 4, p.name) != 0) {
          c.Problem(Kind::kHashMismatch, rel,
                    "object name is not its 64-digit upper-case hash under its prefix");
          continue;
        }
        objects.insert(name);
        ++c.result.objects;
        ASSIGN_OR_RETURN(int fd, fs_->OpenAt(dir->get(), name, O_RDONLY | O_NOFOLLOW));
        ScopedFd f(fs_, fd);
        struct stat st {};
        RETURN_IF_ERROR(fs_->Fstat(fd, &st));
        if (!S_ISREG(st.st_mode)) {
          c.Problem(Kind::kHashMismatch, rel, "object is not a regular file");
          continue;
        }
        if (rehash) {
          uint64_t off = 0;
          ASSIGN_OR_RETURN(auto digest, HashFile(fs_, fd, buf, &off));
          c.result.bytes_hashed += off;
          const std::string actual = ToHex(digest);
          if (actual != name) {
            c.Problem(Kind::kHashMismatch, rel, fmt::format("bytes hash to {}", actual));
          }
        }
        ASSIGN_OR_RETURN(auto text, c.Read(dir->get(), name + ".INI"));
        if (!text) {
          c.Problem(Kind::kBadIni, rel + ".INI", "object has no reference list");
          continue;
        }
        auto ini = IniFile::Parse(*text, rel + ".INI");
        if (!ini.ok()) {
          c.Problem(Kind::kBadIni, rel + ".INI", std::string(ini.status().message()));
          continue;
        }
        if (ini->Get("File", "Size") != std::to_string(st.st_size)) {
          c.Problem(Kind::kSizeMismatch, rel,
                    fmt::format("object is {} bytes, its INI says {}", st.st_size,
                                ini->Get("File", "Size").value_or("nothing")));
        }
        auto es = expected_size.find(name);
        if (es != expected_size.end() && es->second != static_cast<uint64_t>(st.st_size)) {
          c.Problem(Kind::kSizeMismatch, rel,
                    fmt::format("object is {} bytes, DataLib says {}", st.st_size, es->second));
        }
        std::set<std::string> users;
        if (const auto* s = ini->FindSection("Users")) {
          for (const auto& u : s->entries) users.insert(u.key);
        }
        for (const auto& u : users) {
          if (!contents.count(u)) {
            c.Problem(Kind::kDanglingReference, rel + ".INI",
                      fmt::format("user '{}' is not in DataLib", u));
          }
        }
        const auto& want = expected_users[name];
        for (const auto& u : want) {
          if (!users.count(u)) {
            c.Problem(Kind::kMissingReference, rel + ".INI",
                      fmt::format("content '{}' uses it but is not listed", u));
          }
        }
        if (want.empty()) c.Problem(Kind::kOrphan, rel, "no content uses this object");
      }
    }
    for (const auto& [hex, users] : expected_users) {
      if (!objects.count(hex)) {
        c.Problem(Kind::kMissingObject, FileLibObject(hex),
                  fmt::format("used by {} but absent", *users.begin()));
      }
    }
  }
  return std::move(c.result);
}

}  // namespace dpr::contentlib
