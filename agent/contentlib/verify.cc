// ContentLibrary::Verify: every cross-reference of PkgLib, DataLib and
// FileLib, and (with rehash) every object's bytes against its name. Problems
// are collected and named, not fatal; only an I/O failure aborts.
#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <vector>

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

// Objects and contents are read this many at a time: enough to keep every
// thread busy, few enough that the open folders and records stay small.
constexpr size_t kChunkObjects = 1024;
constexpr size_t kChunkContents = 64;
constexpr size_t kChunkPrefixes = 256;

// An object as the reading threads found it.
struct ObjectRead {
  std::string dir_rel, name, rel;  // its prefix folder, its name, both
  absl::Status status;             // opening, stat or reading failed: verify stops
  struct stat st {};
  std::optional<std::string> ini;  // its reference list, if there is one
  Sha256Digest digest{};           // with rehash, of a regular file
  uint64_t bytes_hashed = 0;
};

// At least 8: a cold disk answers small reads faster with more in flight
// (the 2 GiB bench library without re-hashing: 2.4-2.8 s cold with 8,
// 2.9-3.0 s with 4; warm, 8 cost 0.1 s of re-hashing on 2 cores).
size_t Threads() { return std::max(8u, std::thread::hardware_concurrency()); }

// Runs fn(i, worker) for every i in [0, n) on up to Threads() threads;
// `worker` < Threads() tells the threads apart.
void ParallelEach(size_t n, const std::function<void(size_t, size_t)>& fn) {
  std::atomic<size_t> next{0};
  auto work = [&](size_t worker) {
    for (size_t i; (i = next++) < n;) fn(i, worker);
  };
  std::vector<std::thread> helpers;
  for (size_t w = 1; w < std::min(n, Threads()); ++w) helpers.emplace_back(work, w);
  work(0);
  for (auto& t : helpers) t.join();
}

// Reads each object's reference list, opens, stats and (with rehash)
// hashes the object, in parallel. Only reads: Checker::Read is safe here.
void ReadObjects(Checker& c, std::vector<ObjectRead>& objects, bool rehash,
                 std::vector<std::vector<uint8_t>>& bufs) {
  FileSystem* fs = c.fs;
  bufs.resize(Threads());
  ParallelEach(objects.size(), [&](size_t i, size_t worker) {
    ObjectRead& o = objects[i];
    // The prefix folder is opened again here rather than kept open since
    // its listing: a chunk spans up to 1,024 of them, the usual limit of
    // open files.
    auto dir = c.OpenDir(o.dir_rel);
    if (!dir.ok() || !*dir) {
      o.status =
          dir.ok() ? absl::NotFoundError(fmt::format("'{}' vanished", o.dir_rel)) : dir.status();
      return;
    }
    const int dir_fd = (*dir)->get();
    auto ini = c.Read(dir_fd, o.name + ".INI");
    if (!ini.ok()) {
      o.status = ini.status();
      return;
    }
    o.ini = std::move(*ini);
    // O_NONBLOCK: a FIFO planted in FileLib must not hang the verify.
    auto fd = fs->OpenAt(dir_fd, o.name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    if (!fd.ok()) {
      o.status = fd.status();
      return;
    }
    ScopedFd f(fs, *fd);
    o.status = fs->Fstat(*fd, &o.st);
    if (!o.status.ok() || !rehash || !S_ISREG(o.st.st_mode)) return;
    std::vector<uint8_t>& buf = bufs[worker];
    if (buf.empty()) buf.resize(1 << 20);
    auto digest = HashFile(fs, *fd, buf, &o.bytes_hashed);
    if (digest.ok()) {
      o.digest = *digest;
    } else {
      o.status = digest.status();
    }
  });
}

}  // namespace

absl::StatusOr<VerifyResult> ContentLibrary::Verify(bool rehash, const VerifyProgressFn& progress,
                                                    const std::function<bool()>& stop) {
  Checker c{fs_, lib_fd_, {}};
  VerifyProgress done;
  auto report = [&] {
    if (progress) progress(done);
  };
  auto stopped = [&]() -> absl::Status {
    if (stop && stop()) return absl::CancelledError("verify cancelled: its caller is gone");
    return absl::OkStatus();
  };
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
    // Contents are read (their INI and tree) a chunk at a time in parallel,
    // then checked here in order.
    struct Content {
      std::string cid, path;
      ContentId id;
      absl::StatusOr<ContentRecord> rec = absl::UnknownError("not read");
    };
    std::vector<Content> chunk;
    for (const auto& e : entries) {
      if (!IsTempName(e.name) && std::string_view(e.name).ends_with(".INI")) ++done.contents_total;
    }
    auto check_chunk = [&] {
      ParallelEach(chunk.size(), [&](size_t i, size_t) { chunk[i].rec = Lookup(chunk[i].id); });
      done.contents_done += chunk.size();
      for (Content& ct : chunk) {
        const std::string& cid = ct.cid;
        const std::string& path = ct.path;
        const ContentId& id = ct.id;
        const absl::StatusOr<ContentRecord>& rec = ct.rec;
        if (!rec.ok()) {
          c.Problem(rec.status().code() == absl::StatusCode::kNotFound ? Kind::kMissingContent
                                                                       : Kind::kBadIni,
                    DataLibDir(id), std::string(rec.status().message()));
          continue;
        }
        if (!IsUpperHexDigest(rec->content_hash)) {
          c.Problem(Kind::kBadIni, path, "[Info] Hash= is not 64 upper-case hex digits");
        } else {
          std::vector<HashedFile> hashed;
          for (const auto& f : rec->files) hashed.push_back({f.rel_path, f.hash});
          auto h = ComputeContentHash(rec->dirs, hashed);
          if (h.ok() && *h != rec->content_hash) {
            c.Problem(Kind::kContentHashMismatch, path,
                      fmt::format("content hash {} does not match its files ({})",
                                  rec->content_hash, *h));
          }
        }
        for (const auto& f : rec->files) {
          const std::string hex = ToHex(f.hash);
          expected_users[hex].insert(cid);
          auto [it, inserted] = expected_size.emplace(hex, f.size);
          if (!inserted && it->second != f.size) {
            c.Problem(Kind::kSizeMismatch, DataLibDir(id) + "/" + f.rel_path + ".INI",
                      fmt::format("Size={} but another content records {} for the same hash",
                                  f.size, it->second));
          }
        }
      }
      chunk.clear();
      report();
    };
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
        ++done.contents_done;
        continue;
      }
      contents.insert(cid);
      ++c.result.contents;
      if (!committed.count(cid)) {
        c.Problem(Kind::kOrphan, path, "content is not named in PkgLib (an interrupted import?)");
      }
      chunk.push_back({cid, path, *id});
      if (chunk.size() < kChunkContents) continue;
      check_chunk();
      RETURN_IF_ERROR(stopped());
    }
    check_chunk();
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

  // FileLib: each object, its name, bytes, size and reference list. The
  // objects of a chunk are opened and re-hashed on several threads (a cold
  // disk reads faster with more reads in flight, a warm cache hashes on
  // every core); the checks then run on this thread, in order.
  std::set<std::string> objects;
  done.objects_expected = expected_size.size();
  for (const auto& [_, size] : expected_size) done.bytes_expected += rehash ? size : 0;
  if (filelib) {
    ASSIGN_OR_RETURN(auto prefixes, fs_->ReadDir(filelib->get()));
    std::vector<ObjectRead> chunk;
    std::vector<std::vector<uint8_t>> bufs;  // one per reading thread
    auto check_chunk = [&]() -> absl::Status {
      ReadObjects(c, chunk, rehash, bufs);
      for (ObjectRead& o : chunk) {
        RETURN_IF_ERROR(o.status);
        const std::string& name = o.name;
        const std::string& rel = o.rel;
        objects.insert(name);
        ++c.result.objects;
        const struct stat& st = o.st;
        if (!S_ISREG(st.st_mode)) {
          c.Problem(Kind::kHashMismatch, rel, "object is not a regular file");
          continue;
        }
        if (rehash) {
          c.result.bytes_hashed += o.bytes_hashed;
          const std::string actual = ToHex(o.digest);
          if (actual != name) {
            c.Problem(Kind::kHashMismatch, rel, fmt::format("bytes hash to {}", actual));
          }
        }
        const std::optional<std::string>& text = o.ini;
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
      done.objects_done += chunk.size();
      done.bytes_hashed = c.result.bytes_hashed;
      chunk.clear();
      report();
      return stopped();
    };
    std::vector<std::string> names_ok;  // the well-named prefix folders, in order
    for (const auto& p : prefixes) {
      if (IsTempName(p.name)) continue;
      if (p.name.size() != 4 || !IsUpperHex(p.name)) {
        c.Problem(Kind::kOrphan, std::string(kFileLib) + "/" + p.name,
                  "not a FileLib prefix folder");
        continue;
      }
      names_ok.push_back(p.name);
    }
    // Prefix folders are listed a group at a time on several threads: a
    // cold disk answers one small folder at a time slowly.
    struct Listing {
      std::string prefix, dir_rel;
      absl::StatusOr<std::optional<std::vector<DirEntry>>> entries;
    };
    std::vector<Listing> group;
    for (size_t first = 0; first < names_ok.size(); first += kChunkPrefixes) {
      group.clear();
      for (size_t i = first; i < std::min(names_ok.size(), first + kChunkPrefixes); ++i) {
        group.push_back({names_ok[i], std::string(kFileLib) + "/" + names_ok[i],
                         std::optional<std::vector<DirEntry>>()});
      }
      ParallelEach(group.size(), [&](size_t i, size_t) {
        Listing& l = group[i];
        auto dir = c.OpenDir(l.dir_rel);
        if (!dir.ok()) {
          l.entries = dir.status();
          return;
        }
        if (!*dir) return;  // vanished since FileLib was listed: skipped
        auto entries = fs_->ReadDir((*dir)->get());
        if (entries.ok()) {
          l.entries = std::optional(std::move(*entries));
        } else {
          l.entries = entries.status();
        }
      });
      for (const Listing& l : group) {
        RETURN_IF_ERROR(l.entries.status());
        if (!*l.entries) continue;
        std::set<std::string> names;
        for (const auto& e : **l.entries) {
          if (!IsTempName(e.name)) names.insert(e.name);
        }
        for (const auto& name : names) {
          const std::string rel = l.dir_rel + "/" + name;
          if (std::string_view(name).ends_with(".INI")) {
            if (!names.count(name.substr(0, name.size() - 4))) {
              c.Problem(Kind::kMissingObject, rel, "reference list without its object");
            }
            continue;
          }
          if (!IsUpperHexDigest(name) || name.compare(0, 4, l.prefix) != 0) {
            c.Problem(Kind::kHashMismatch, rel,
                      "object name is not its 64-digit upper-case hash under its prefix");
            continue;
          }
          chunk.push_back({l.dir_rel, name, rel});
        }
        if (chunk.size() >= kChunkObjects) RETURN_IF_ERROR(check_chunk());
      }
    }
    RETURN_IF_ERROR(check_chunk());
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
