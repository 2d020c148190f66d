#include "agent/contentlib/content_library.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "agent/contentlib/content_hash.h"
#include "common/fs/durable_file.h"
#include "common/hash/sha256.h"
#include "common/ini/ini_file.h"
#include "common/status/fmt_absl.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"

namespace dpr::contentlib {
namespace {

constexpr size_t kMaxIniBytes = 1 << 20;

// Removes `rel` (a file or a whole folder) below `dirfd`, never following
// symlinks.
absl::Status RemoveTree(FileSystem* fs, int dirfd, const std::string& rel) {
  struct stat st {};
  absl::Status s = fs->FstatAt(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW);
  if (absl::IsNotFound(s)) return absl::OkStatus();
  RETURN_IF_ERROR(s);
  if (!S_ISDIR(st.st_mode)) return fs->UnlinkAt(dirfd, rel, 0);
  ASSIGN_OR_RETURN(int fd, fs->OpenAt(dirfd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  ScopedFd dir(fs, fd);
  ASSIGN_OR_RETURN(auto entries, fs->ReadDir(fd));
  for (const auto& e : entries) RETURN_IF_ERROR(RemoveTree(fs, fd, e.name));
  RETURN_IF_ERROR(dir.Close());
  return fs->UnlinkAt(dirfd, rel, AT_REMOVEDIR);
}

}  // namespace

std::string_view KindName(VerifyProblem::Kind kind) {
  using K = VerifyProblem::Kind;
  switch (kind) {
    case K::kMissingFolder:
      return "missing-folder";
    case K::kMissingObject:
      return "missing-object";
    case K::kHashMismatch:
      return "hash-mismatch";
    case K::kSizeMismatch:
      return "size-mismatch";
    case K::kBadIni:
      return "bad-ini";
    case K::kDanglingReference:
      return "dangling-reference";
    case K::kMissingReference:
      return "missing-reference";
    case K::kOrphan:
      return "orphan";
    case K::kMissingContent:
      return "missing-content";
    case K::kContentHashMismatch:
      return "content-hash-mismatch";
  }
  return "unknown";
}

ContentLibrary::ContentLibrary(FileSystem* fs, std::string path, int lib_fd)
    : fs_(fs), path_(std::move(path)), lib_fd_(lib_fd), object_dir_known_(65536, false) {}

ContentLibrary::~ContentLibrary() { (void)fs_->Close(lib_fd_); }

absl::StatusOr<std::unique_ptr<ContentLibrary>> ContentLibrary::Open(FileSystem* fs,
                                                                     const std::string& root) {
  const std::string path = root + "/" + kLibraryDir;
  for (const std::string& dir :
       {root, path, path + "/" + kPkgLib, path + "/" + kDataLib, path + "/" + kFileLib}) {
    absl::Status s = fs->MkdirAt(AT_FDCWD, dir, 0755);
    if (!s.ok() && s.code() != absl::StatusCode::kAlreadyExists) {
      return Annotate(s, "open content library");
    }
  }
  ASSIGN_OR_RETURN(int fd, fs->OpenAt(AT_FDCWD, path, O_RDONLY | O_DIRECTORY));
  std::unique_ptr<ContentLibrary> lib(new ContentLibrary(fs, path, fd));
  RETURN_IF_ERROR(lib->Lock(true));
  RETURN_IF_ERROR(Annotate(lib->RemoveTempFiles(), fmt::format("sweep temp files in '{}'", path)));
  RETURN_IF_ERROR(lib->Sync());
  return lib;
}

absl::StatusOr<std::unique_ptr<ContentLibrary>> ContentLibrary::OpenExisting(
    FileSystem* fs, const std::string& root) {
  const std::string path = root + "/" + kLibraryDir;
  auto fd = fs->OpenAt(AT_FDCWD, path, O_RDONLY | O_DIRECTORY);
  if (absl::IsNotFound(fd.status())) {
    return absl::NotFoundError(fmt::format("no content library at '{}'", path));
  }
  RETURN_IF_ERROR(fd.status());
  std::unique_ptr<ContentLibrary> lib(new ContentLibrary(fs, path, *fd));
  RETURN_IF_ERROR(lib->Lock(false));
  return lib;
}

absl::Status ContentLibrary::Lock(bool exclusive) {
  absl::Status s = fs_->TryLock(lib_fd_, exclusive);
  if (absl::IsUnavailable(s)) {
    return absl::UnavailableError(fmt::format(
        "content library '{}' is in use by another process ({}); try again when it has finished",
        path_, exclusive ? "a conversion, a repair or a verify" : "a conversion or a repair"));
  }
  return s;
}

absl::Status ContentLibrary::RemoveTempFiles() {
  for (const char* top : {kPkgLib, kDataLib, kFileLib}) {
    ASSIGN_OR_RETURN(int fd, fs_->OpenAt(lib_fd_, top, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    ScopedFd dir(fs_, fd);
    ASSIGN_OR_RETURN(auto entries, fs_->ReadDir(fd));
    for (const auto& e : entries) {
      if (IsTempName(e.name)) {
        RETURN_IF_ERROR(RemoveTree(fs_, fd, e.name));
        continue;
      }
      // FileLib/<4 hex>/ may hold INI temps.
      if (std::string_view(top) == kFileLib && e.name.size() == 4) {
        ASSIGN_OR_RETURN(int sub, fs_->OpenAt(fd, e.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        ScopedFd subdir(fs_, sub);
        ASSIGN_OR_RETURN(auto inner, fs_->ReadDir(sub));
        for (const auto& f : inner) {
          if (IsTempName(f.name)) RETURN_IF_ERROR(fs_->UnlinkAt(sub, f.name, 0));
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ContentLibrary::Sync() { return fs_->SyncFs(lib_fd_); }

absl::Status ContentLibrary::FsyncPath(const std::string& rel) {
  ASSIGN_OR_RETURN(int fd, fs_->OpenAt(lib_fd_, rel, O_RDONLY));
  ScopedFd f(fs_, fd);
  RETURN_IF_ERROR(fs_->Fsync(fd));
  return f.Close();
}

absl::Status ContentLibrary::WriteSmallFile(const std::string& rel, const std::string& data,
                                            bool durable) {
  const size_t slash = rel.rfind('/');
  const std::string dir = rel.substr(0, slash);
  const std::string tmp = TempName(dir, rel.substr(slash + 1));
  ASSIGN_OR_RETURN(int fd, fs_->OpenAt(lib_fd_, tmp, O_WRONLY | O_CREAT | O_EXCL, 0644));
  ScopedFd f(fs_, fd);
  absl::Status s = fs_->PWriteAll(fd, data.data(), data.size(), 0);
  if (s.ok() && durable) s = fs_->Fsync(fd);
  if (s.ok()) s = f.Close();
  if (s.ok()) s = fs_->RenameAt(lib_fd_, tmp, lib_fd_, rel);
  if (!s.ok()) {
    f.Reset();
    (void)fs_->UnlinkAt(lib_fd_, tmp, 0);
    return s;
  }
  if (durable) return FsyncPath(dir);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> ContentLibrary::ReadSmallFile(const std::string& rel) {
  ASSIGN_OR_RETURN(int fd, fs_->OpenIfExists(lib_fd_, rel, O_RDONLY | O_NOFOLLOW));
  if (fd < 0) return std::optional<std::string>();
  ScopedFd f(fs_, fd);
  std::string out;
  char buf[16384];
  for (;;) {
    ASSIGN_OR_RETURN(size_t n, fs_->PRead(fd, buf, sizeof buf, out.size()));
    if (n == 0) break;
    out.append(buf, n);
    if (out.size() > kMaxIniBytes) {
      return absl::FailedPreconditionError(fmt::format("'{}' is too large for an INI", rel));
    }
  }
  return std::optional<std::string>(std::move(out));
}

absl::Status ContentLibrary::EnsureObjectDir(const Sha256Digest& hash) {
  const size_t index = (size_t{hash[0]} << 8) | hash[1];  // the folder's 4 hex digits
  {
    std::lock_guard<std::mutex> lock(dirs_lock_);
    if (object_dir_known_[index]) return absl::OkStatus();
  }
  absl::Status s = fs_->MkdirAt(lib_fd_, FileLibDir(ToHex(hash)), 0755);
  if (!s.ok() && s.code() != absl::StatusCode::kAlreadyExists) return s;
  std::lock_guard<std::mutex> lock(dirs_lock_);
  object_dir_known_[index] = true;
  return absl::OkStatus();
}

absl::StatusOr<bool> ContentLibrary::HasObject(const Sha256Digest& hash) {
  struct stat st {};
  return fs_->StatIfExists(lib_fd_, FileLibObject(ToHex(hash)), &st);
}

absl::StatusOr<ContentLibrary::Staged> ContentLibrary::CreateStagingFile(const Sha256Digest& hash) {
  const std::string hex = ToHex(hash);
  RETURN_IF_ERROR(EnsureObjectDir(hash));
  Staged staged;
  staged.name = TempName(FileLibDir(hex), hex);
  ASSIGN_OR_RETURN(int fd, fs_->OpenAt(lib_fd_, staged.name, O_WRONLY | O_CREAT | O_EXCL, 0644));
  staged.fd = ScopedFd(fs_, fd);
  return staged;
}

absl::StatusOr<ContentLibrary::Staged> ContentLibrary::CreateStagingFile() {
  Staged staged;
  staged.name = TempName(kFileLib, "object");
  ASSIGN_OR_RETURN(int fd, fs_->OpenAt(lib_fd_, staged.name, O_WRONLY | O_CREAT | O_EXCL, 0644));
  staged.fd = ScopedFd(fs_, fd);
  return staged;
}

absl::StatusOr<bool> ContentLibrary::HasNoObjects() {
  ASSIGN_OR_RETURN(int fd, fs_->OpenAt(lib_fd_, kFileLib, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  ScopedFd dir(fs_, fd);
  ASSIGN_OR_RETURN(auto entries, fs_->ReadDir(fd));
  for (const auto& e : entries) {
    if (!IsTempName(e.name)) return false;
  }
  return true;
}

absl::Status ContentLibrary::PublishStaged(const std::string& staged_name,
                                           const Sha256Digest& hash) {
  // The prefix folder exists: CreateStagingFile(hash) or EnsureObjectDir made it.
  return fs_->RenameAt(lib_fd_, staged_name, lib_fd_, FileLibObject(ToHex(hash)), RENAME_NOREPLACE);
}

absl::StatusOr<bool> ContentLibrary::LinkObject(int src_fd, const Sha256Digest& hash) {
  const std::string hex = ToHex(hash);
  RETURN_IF_ERROR(EnsureObjectDir(hash));
  absl::Status s = fs_->LinkFd(src_fd, lib_fd_, FileLibObject(hex));
  if (s.code() == absl::StatusCode::kAlreadyExists) return false;
  RETURN_IF_ERROR(s);
  return true;
}

absl::StatusOr<bool> ContentLibrary::ReplaceObject(int src_fd, const Sha256Digest& hash) {
  ASSIGN_OR_RETURN(Staged staged, CreateStagingFile(hash));
  auto drop = [&](absl::Status st) {
    (void)fs_->UnlinkAt(lib_fd_, staged.name, 0);
    return st;
  };
  Sha256 sha;
  std::vector<uint8_t> buf(1 << 20);
  uint64_t off = 0;
  for (;;) {
    auto n = fs_->PRead(src_fd, buf.data(), buf.size(), off);
    if (!n.ok()) return drop(n.status());
    if (*n == 0) break;
    sha.Update(buf.data(), *n);
    if (auto st = fs_->PWriteAll(staged.fd.get(), buf.data(), *n, off); !st.ok()) return drop(st);
    off += *n;
  }
  if (sha.Finish() != hash) {
    (void)drop(absl::OkStatus());
    return false;
  }
  if (auto st = fs_->Fsync(staged.fd.get()); !st.ok()) return drop(st);
  // Over the damaged object (or into its empty place): rename replaces it
  // atomically, and the folder is synced so the repair survives power loss.
  if (auto st = fs_->RenameAt(lib_fd_, staged.name, lib_fd_, FileLibObject(ToHex(hash)), 0);
      !st.ok()) {
    return drop(st);
  }
  RETURN_IF_ERROR(Sync());
  return true;
}

absl::StatusOr<std::optional<uint64_t>> ContentLibrary::RecordedObjectSize(
    const Sha256Digest& hash) {
  const std::string rel = FileLibIni(ToHex(hash));
  ASSIGN_OR_RETURN(auto text, ReadSmallFile(rel));
  if (!text) return std::optional<uint64_t>();
  auto ini = IniFile::Parse(*text, rel);
  uint64_t size = 0;
  if (!ini.ok() || !absl::SimpleAtoi(ini->Get("File", "Size").value_or(""), &size)) {
    return std::optional<uint64_t>();
  }
  return std::optional<uint64_t>(size);
}

absl::StatusOr<std::string> ContentLibrary::StageFile(const std::string& rel,
                                                      const std::string& data) {
  const size_t slash = rel.rfind('/');
  const std::string tmp = TempName(rel.substr(0, slash), rel.substr(slash + 1));
  ASSIGN_OR_RETURN(int fd, fs_->OpenAt(lib_fd_, tmp, O_WRONLY | O_CREAT | O_EXCL, 0644));
  ScopedFd f(fs_, fd);
  absl::Status s = fs_->PWriteAll(fd, data.data(), data.size(), 0);
  if (s.ok()) s = f.Close();
  if (!s.ok()) {
    f.Reset();
    (void)fs_->UnlinkAt(lib_fd_, tmp, 0);
    return s;
  }
  return tmp;
}

absl::Status ContentLibrary::PublishFile(const std::string& staged, const std::string& rel) {
  return fs_->RenameAt(lib_fd_, staged, lib_fd_, rel);
}

absl::StatusOr<std::optional<std::string>> ContentLibrary::FileLibIniWithUsers(
    const Sha256Digest& hash, uint64_t size, const std::vector<ContentId>& users, bool is_new) {
  const std::string ini_path = FileLibIni(ToHex(hash));
  std::optional<std::string> text;
  if (!is_new) {
    ASSIGN_OR_RETURN(text, ReadSmallFile(ini_path));
  }
  IniFile ini;
  if (text.has_value()) {
    auto parsed = IniFile::Parse(*text, ini_path);
    // A damaged list is rebuilt from what we know; verify reports lost users.
    if (parsed.ok()) ini = std::move(*parsed);
  }
  bool changed = ini.Get("File", "Size") != std::to_string(size);
  RETURN_IF_ERROR(ini.Set("File", "Size", std::to_string(size)));
  ini.AddSection("Users");
  for (const auto& u : users) {
    if (ini.Get("Users", u.ToString()).has_value()) continue;
    RETURN_IF_ERROR(ini.Set("Users", u.ToString(), ""));
    changed = true;
  }
  if (!changed) return std::optional<std::string>();
  return std::optional<std::string>(ini.Serialize());
}

absl::StatusOr<std::string> ContentLibrary::PkgLibIniWith(const std::string& package_id,
                                                          const std::vector<uint32_t>& versions) {
  const std::string path = PkgLibIni(package_id);
  ASSIGN_OR_RETURN(auto text, ReadSmallFile(path));
  IniFile ini;
  if (text.has_value()) {
    ASSIGN_OR_RETURN(ini, IniFile::Parse(*text, path));
  }
  uint32_t newest = 0;
  for (uint32_t v : versions) {
    ASSIGN_OR_RETURN(ContentId id, MakeContentId(package_id, v));
    RETURN_IF_ERROR(ini.Set("Packages", id.ToString(), ""));
    newest = std::max(newest, v);
  }
  RETURN_IF_ERROR(ini.Set("Info", "Version", std::to_string(newest)));
  return ini.Serialize();
}

std::string ContentLibrary::DataLibIniText(const ContentRecord& content) {
  return "[Info]\r\nHash=" + content.content_hash + "\r\n";
}

absl::StatusOr<std::string> ContentLibrary::StageContent(const ContentRecord& content) {
  const std::string tmp = TempName(kDataLib, content.id.ToString());
  RETURN_IF_ERROR(fs_->MkdirAt(lib_fd_, tmp, 0755));
  std::set<std::string> dirs(content.dirs.begin(), content.dirs.end());
  for (const auto& f : content.files) {
    for (size_t p = f.rel_path.find('/'); p != std::string::npos; p = f.rel_path.find('/', p + 1)) {
      dirs.insert(f.rel_path.substr(0, p));
    }
  }
  for (const auto& d : dirs) {  // sorted: parents first
    RETURN_IF_ERROR(fs_->MkdirAt(lib_fd_, tmp + "/" + d, 0755));
  }
  for (const auto& f : content.files) {
    if (dirs.count(f.rel_path + ".INI")) {
      return absl::FailedPreconditionError(
          fmt::format("content '{}': file '{}' and folder '{}.INI' cannot both exist in DataLib",
                      content.id.ToString(), f.rel_path, f.rel_path));
    }
    IniFile ini;
    RETURN_IF_ERROR(ini.Set("File", "Size", std::to_string(f.size)));
    RETURN_IF_ERROR(ini.Set("File", "TimeModified", std::to_string(f.time_modified)));
    RETURN_IF_ERROR(ini.Set("File", "Attributes", fmt::format("{:X}", f.attributes)));
    RETURN_IF_ERROR(ini.Set("File", "Hash", ToHex(f.hash)));
    const std::string data = ini.Serialize();
    ASSIGN_OR_RETURN(int fd, fs_->OpenAt(lib_fd_, tmp + "/" + f.rel_path + ".INI",
                                         O_WRONLY | O_CREAT | O_EXCL, 0644));
    ScopedFd file(fs_, fd);
    RETURN_IF_ERROR(fs_->PWriteAll(fd, data.data(), data.size(), 0));
    RETURN_IF_ERROR(file.Close());
  }
  return tmp;
}

absl::Status ContentLibrary::PublishContentTree(const ContentId& id,
                                                const std::string& staged_dir) {
  const std::string target = DataLibDir(id);
  absl::Status s = fs_->RenameAt(lib_fd_, staged_dir, lib_fd_, target, RENAME_NOREPLACE);
  if (s.code() == absl::StatusCode::kAlreadyExists) {
    // A tree from an interrupted run: swap atomically, then drop the old one.
    RETURN_IF_ERROR(fs_->RenameAt(lib_fd_, staged_dir, lib_fd_, target, RENAME_EXCHANGE));
    return RemoveTree(fs_, lib_fd_, staged_dir);
  }
  return s;
}

absl::Status ContentLibrary::RemoveStagedContent(const std::string& staged_dir) {
  return RemoveTree(fs_, lib_fd_, staged_dir);
}

absl::StatusOr<bool> ContentLibrary::IsCommitted(const ContentId& id) {
  ASSIGN_OR_RETURN(auto text, ReadSmallFile(PkgLibIni(id.package_id)));
  if (!text.has_value()) return false;
  auto ini = IniFile::Parse(*text, PkgLibIni(id.package_id));
  if (!ini.ok() || !ini->Get("Packages", id.ToString()).has_value()) return false;
  struct stat st {};
  return fs_->StatIfExists(lib_fd_, DataLibIni(id), &st);
}

namespace {

// Reads DataLib/<id>/ back: folders, and each "<name>.INI" as a file record.
absl::Status ReadDataTree(FileSystem* fs, int dirfd, const std::string& rel,
                          const std::string& where, ContentRecord* out,
                          std::vector<VerifyProblem>* problems) {
  ASSIGN_OR_RETURN(auto entries, fs->ReadDir(dirfd));
  for (const auto& e : entries) {
    const std::string child = rel.empty() ? e.name : rel + "/" + e.name;
    struct stat st {};
    RETURN_IF_ERROR(fs->FstatAt(dirfd, e.name, &st, AT_SYMLINK_NOFOLLOW));
    if (S_ISDIR(st.st_mode)) {
      out->dirs.push_back(child);
      ASSIGN_OR_RETURN(int fd, fs->OpenAt(dirfd, e.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
      ScopedFd sub(fs, fd);
      RETURN_IF_ERROR(ReadDataTree(fs, fd, child, where + "/" + e.name, out, problems));
      continue;
    }
    const std::string path = where + "/" + e.name;
    auto bad = [&](std::string why) {
      if (problems) problems->push_back({VerifyProblem::Kind::kBadIni, path, std::move(why)});
      return problems ? absl::OkStatus() : absl::DataLossError(fmt::format("'{}': {}", path, why));
    };
    if (!S_ISREG(st.st_mode) || !std::string_view(e.name).ends_with(".INI")) {
      RETURN_IF_ERROR(bad("not a per-file INI"));
      continue;
    }
    ASSIGN_OR_RETURN(int fd, fs->OpenAt(dirfd, e.name, O_RDONLY | O_NOFOLLOW));
    ScopedFd f(fs, fd);
    std::string text(static_cast<size_t>(std::min<off_t>(st.st_size, 65536)), '\0');
    ASSIGN_OR_RETURN(size_t n, fs->PRead(fd, text.data(), text.size(), 0));
    text.resize(n);
    auto ini = IniFile::Parse(text, path);
    if (!ini.ok()) {
      RETURN_IF_ERROR(bad(std::string(ini.status().message())));
      continue;
    }
    FileRecord rec;
    rec.rel_path = child.substr(0, child.size() - 4);
    auto size = ini->Get("File", "Size");
    auto hash = ini->Get("File", "Hash");
    auto time = ini->Get("File", "TimeModified");
    auto attrs = ini->Get("File", "Attributes");
    auto digest =
        hash ? ParseHexDigest(*hash) : absl::StatusOr<Sha256Digest>(absl::NotFoundError(""));
    if (!size || !digest.ok() || !IsUpperHexDigest(*hash)) {
      RETURN_IF_ERROR(bad("missing or malformed [File] Size= or Hash="));
      continue;
    }
    rec.size = std::strtoull(size->c_str(), nullptr, 10);
    rec.hash = *digest;
    if (time) rec.time_modified = std::strtoull(time->c_str(), nullptr, 10);
    if (attrs) rec.attributes = static_cast<uint32_t>(std::strtoul(attrs->c_str(), nullptr, 16));
    out->files.push_back(std::move(rec));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ContentRecord> ContentLibrary::Lookup(const ContentId& id) {
  ASSIGN_OR_RETURN(auto text, ReadSmallFile(DataLibIni(id)));
  if (!text.has_value()) {
    return absl::NotFoundError(fmt::format("content '{}' is not in the library", id.ToString()));
  }
  ASSIGN_OR_RETURN(IniFile ini, IniFile::Parse(*text, DataLibIni(id)));
  ContentRecord rec;
  rec.id = id;
  rec.content_hash = ini.Get("Info", "Hash").value_or("");
  ASSIGN_OR_RETURN(int fd,
                   fs_->OpenAt(lib_fd_, DataLibDir(id), O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  ScopedFd dir(fs_, fd);
  RETURN_IF_ERROR(ReadDataTree(fs_, fd, "", DataLibDir(id), &rec, nullptr));
  std::sort(rec.dirs.begin(), rec.dirs.end());
  std::sort(rec.files.begin(), rec.files.end(),
            [](const FileRecord& a, const FileRecord& b) { return a.rel_path < b.rel_path; });
  return rec;
}

absl::StatusOr<std::vector<ContentId>> ContentLibrary::ListContents() {
  ASSIGN_OR_RETURN(int fd, fs_->OpenAt(lib_fd_, kPkgLib, O_RDONLY | O_DIRECTORY));
  ScopedFd dir(fs_, fd);
  ASSIGN_OR_RETURN(auto entries, fs_->ReadDir(fd));
  std::vector<ContentId> out;
  for (const auto& e : entries) {
    if (IsTempName(e.name) || !std::string_view(e.name).ends_with(".INI")) continue;
    const std::string path = std::string(kPkgLib) + "/" + e.name;
    ASSIGN_OR_RETURN(auto text, ReadSmallFile(path));
    if (!text) continue;
    ASSIGN_OR_RETURN(IniFile ini, IniFile::Parse(*text, path));
    if (const auto* s = ini.FindSection("Packages")) {
      for (const auto& entry : s->entries) {
        ASSIGN_OR_RETURN(ContentId id, ParseContentId(entry.key));
        out.push_back(id);
      }
    }
  }
  std::sort(out.begin(), out.end(),
            [](const ContentId& a, const ContentId& b) { return a.ToString() < b.ToString(); });
  return out;
}

absl::Status ContentLibrary::RemoveContent(const ContentId& id) {
  ASSIGN_OR_RETURN(ContentRecord rec, Lookup(id));
  {
    const std::string path = PkgLibIni(id.package_id);
    std::lock_guard<std::mutex> lock(pkglib_lock_);
    ASSIGN_OR_RETURN(auto text, ReadSmallFile(path));
    if (text.has_value()) {
      ASSIGN_OR_RETURN(IniFile ini, IniFile::Parse(*text, path));
      ini.Remove("Packages", id.ToString());
      const auto* pkgs = ini.FindSection("Packages");
      if (pkgs == nullptr || pkgs->entries.empty()) {
        RETURN_IF_ERROR(fs_->UnlinkAt(lib_fd_, path, 0));
      } else {
        uint32_t newest = 0;
        for (const auto& e : pkgs->entries) {
          if (auto c = ParseContentId(e.key); c.ok()) newest = std::max(newest, c->version);
        }
        RETURN_IF_ERROR(ini.Set("Info", "Version", std::to_string(newest)));
        RETURN_IF_ERROR(WriteSmallFile(path, ini.Serialize(), /*durable=*/true));
      }
    }
  }
  RETURN_IF_ERROR(Sync());  // the content is no longer served before its parts go
  RETURN_IF_ERROR(fs_->UnlinkAt(lib_fd_, DataLibIni(id), 0));
  RETURN_IF_ERROR(RemoveTree(fs_, lib_fd_, DataLibDir(id)));
  std::set<std::string> hashes;
  for (const auto& f : rec.files) hashes.insert(ToHex(f.hash));
  for (const auto& hex : hashes) {
    ASSIGN_OR_RETURN(Sha256Digest digest, ParseHexDigest(hex));
    std::lock_guard<std::mutex> lock(ObjectLock(digest));
    ASSIGN_OR_RETURN(auto text, ReadSmallFile(FileLibIni(hex)));
    IniFile ini;
    if (text.has_value()) {
      if (auto parsed = IniFile::Parse(*text, FileLibIni(hex)); parsed.ok())
        ini = std::move(*parsed);
    }
    ini.Remove("Users", id.ToString());
    const auto* users = ini.FindSection("Users");
    if (users == nullptr || users->entries.empty()) {
      absl::Status s = fs_->UnlinkAt(lib_fd_, FileLibObject(hex), 0);
      if (!s.ok() && !absl::IsNotFound(s)) return s;
      s = fs_->UnlinkAt(lib_fd_, FileLibIni(hex), 0);
      if (!s.ok() && !absl::IsNotFound(s)) return s;
    } else {
      RETURN_IF_ERROR(WriteSmallFile(FileLibIni(hex), ini.Serialize(), /*durable=*/true));
    }
  }
  return Sync();
}

}  // namespace dpr::contentlib
