// The single-instance content library on disk (layout in library_layout.h).
// No gRPC here. All I/O goes through a FileSystem so tests can inject faults.
//
// Durability contract: the staging and publishing calls below do not sync
// on their own. The caller (the importer) batches: stage bytes, Sync(), then
// publish by rename, so a final name never points at bytes that are not yet
// durable; PkgLib is published last, and legacy files go after that is
// synced. Each method states what must already be durable.
// A crash at any point leaves no partial object under a final name: bytes
// are staged under temp names (kTempInfix) that Open() sweeps away.
//
// Thread-safety: every method may be called from several threads; FileLib
// reference lists are updated under per-object locks.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/contentlib/file_system.h"
#include "agent/contentlib/library_layout.h"
#include "common/hash/sha256.h"
#include "common/log/verify_progress.h"

namespace dpr::contentlib {

struct FileRecord {
  std::string rel_path;  // '/'-separated, relative to the package root
  uint64_t size = 0;
  uint64_t time_modified = 0;  // FILETIME
  uint32_t attributes = 0x20;
  Sha256Digest hash{};
};

struct ContentRecord {
  ContentId id;
  std::vector<std::string> dirs;  // every folder, empty ones included ('/'-separated)
  std::vector<FileRecord> files;
  std::string content_hash;  // ComputeContentHash over dirs and files
};

struct VerifyProblem {
  enum class Kind {
    kMissingFolder,
    kMissingObject,
    kHashMismatch,
    kSizeMismatch,
    kBadIni,
    kDanglingReference,
    kMissingReference,
    kOrphan,
    kMissingContent,
    kContentHashMismatch,
  };
  Kind kind;
  std::string path;  // relative to SCCMContentLib
  std::string detail;
};

struct VerifyResult {
  uint64_t packages = 0;
  uint64_t contents = 0;
  uint64_t objects = 0;
  uint64_t bytes_hashed = 0;
  std::vector<VerifyProblem> problems;
  bool ok() const { return problems.empty(); }
};

std::string_view KindName(VerifyProblem::Kind kind);

// How far a verify has got; reported after each chunk of contents or objects.
using VerifyProgress = ::dpr::VerifyProgress;
using VerifyProgressFn = std::function<void(const VerifyProgress&)>;

class ContentLibrary {
 public:
  // Opens <content_root>/SCCMContentLib, creating it and its three folders
  // if needed, and sweeps temp files and folders left by a crash. Holds an
  // exclusive lock on the library while open: a second writer (a conversion
  // run by hand while the agent converts) would sweep the first one's temp
  // files and rewrite reference lists under it. Unavailable if it is held.
  static absl::StatusOr<std::unique_ptr<ContentLibrary>> Open(FileSystem* fs,
                                                              const std::string& content_root);
  // Opens an existing library without changing anything (for verify), under
  // a shared lock, so it never reads a batch half published; NotFound if
  // there is no SCCMContentLib folder, Unavailable while a writer has it.
  static absl::StatusOr<std::unique_ptr<ContentLibrary>> OpenExisting(
      FileSystem* fs, const std::string& content_root);
  ~ContentLibrary();

  // Turns an OpenExisting's shared lock into the exclusive one (before a
  // repair writes). Unavailable if anyone else has the library open; then
  // no lock is held any more, and this object should be dropped.
  absl::Status LockForWriting() { return Lock(true); }

  FileSystem* fs() const { return fs_; }
  int lib_fd() const { return lib_fd_; }
  const std::string& path() const { return path_; }

  // --- FileLib objects -----------------------------------------------------
  absl::StatusOr<bool> HasObject(const Sha256Digest& hash);

  struct Staged {
    ScopedFd fd;       // open for writing
    std::string name;  // relative to SCCMContentLib
  };
  // A temp file beside the object `hash` will become (its prefix folder is
  // made if needed), to stage its bytes in.
  absl::StatusOr<Staged> CreateStagingFile(const Sha256Digest& hash);
  // A temp file for bytes whose hash is not known yet (FileLib's own folder;
  // swept like every temp). Once the hash is known and the object wanted,
  // EnsureObjectDir(hash) before its list is staged; PublishStaged then
  // takes it like the one above.
  absl::StatusOr<Staged> CreateStagingFile();
  // Makes the object's prefix folder (FileLib/<first 4>) if needed; only the
  // first call per folder on this ContentLibrary touches the disk.
  absl::Status EnsureObjectDir(const Sha256Digest& hash);
  // Whether FileLib holds no object folder at all (a fresh library): then no
  // file can be a duplicate of an earlier run's object.
  absl::StatusOr<bool> HasNoObjects();
  // Publishes staged bytes as the object `hash`. Precondition: the staged
  // bytes are durable (Sync() since they were written) and hash to `hash`.
  // AlreadyExists (the staged copy left for the temp sweep) if the object is
  // there already.
  absl::Status PublishStaged(const std::string& staged_name, const Sha256Digest& hash);
  // Hard-links the open, durable file `src_fd` as the object `hash`; returns
  // whether it is new (false: an object was already there and is kept).
  absl::StatusOr<bool> LinkObject(int src_fd, const Sha256Digest& hash);
  // Repairs the object `hash` (damaged or missing) from another copy of its
  // bytes, such as a legacy file: the copy is staged and hashed as it is
  // read, made durable, and renamed over the object only if it hashes to
  // `hash`. Returns false, changing nothing, if it does not.
  absl::StatusOr<bool> ReplaceObject(int src_fd, const Sha256Digest& hash);
  // The size the object's reference list records, if it has a readable one.
  absl::StatusOr<std::optional<uint64_t>> RecordedObjectSize(const Sha256Digest& hash);
  // --- small files (INIs), staged then published ---------------------------
  // Writes `data` to a temp file beside `rel` and returns its name. Publish
  // it with PublishFile after a Sync(), so the bytes are durable before the
  // final name can point at them (a rename over an old INI must never leave
  // an empty one after power loss).
  absl::StatusOr<std::string> StageFile(const std::string& rel, const std::string& data);
  absl::Status PublishFile(const std::string& staged, const std::string& rel);

  // The reference list of object `hash` with `users` added, or nullopt when
  // it already lists them all. The object must exist; `is_new` (this run
  // stored it) skips reading a list that cannot exist yet.
  absl::StatusOr<std::optional<std::string>> FileLibIniWithUsers(
      const Sha256Digest& hash, uint64_t size, const std::vector<ContentId>& users, bool is_new);
  // PkgLib/<package>.INI naming `versions` besides what it already names,
  // the newest as the current [Info] Version.
  absl::StatusOr<std::string> PkgLibIniWith(const std::string& package_id,
                                            const std::vector<uint32_t>& versions);
  static std::string DataLibIniText(const ContentRecord& content);

  // --- contents --------------------------------------------------------------
  // Writes DataLib/<id>/ (per-file INIs) under a temp name. Publish it with
  // PublishContentTree after a Sync().
  absl::StatusOr<std::string> StageContent(const ContentRecord& content);
  // Renames the staged tree into place, replacing a stale one left by an
  // interrupted run.
  absl::Status PublishContentTree(const ContentId& id, const std::string& staged_dir);
  // Removes a staged DataLib tree that will not be published.
  absl::Status RemoveStagedContent(const std::string& staged_dir);
  // Whether PkgLib names the content and DataLib holds its INI.
  absl::StatusOr<bool> IsCommitted(const ContentId& id);
  // Reads a content back from DataLib; NotFound if absent.
  absl::StatusOr<ContentRecord> Lookup(const ContentId& id);
  // Removes a content: PkgLib entry, DataLib tree and INI, and its users
  // entries; objects whose list empties are deleted. Syncs at the end.
  absl::Status RemoveContent(const ContentId& id);
  // Contents named in PkgLib, sorted.
  absl::StatusOr<std::vector<ContentId>> ListContents();

  absl::Status Sync();
  absl::Status FsyncPath(const std::string& rel);
  // Removes every temp file and folder (kTempInfix) in the library. Only
  // safe while nothing else writes to it (Open does it; so does a failed
  // import).
  absl::Status RemoveTempFiles();

  // Re-hashes every object (when `rehash`) and checks every cross-reference.
  // `stop`, asked after each chunk, ends it early with CANCELLED (whoever
  // asked for the verify is gone: the disk need not be read to the end).
  absl::StatusOr<VerifyResult> Verify(bool rehash = true,
                                      const VerifyProgressFn& progress = nullptr,
                                      const std::function<bool()>& stop = nullptr);

 private:
  ContentLibrary(FileSystem* fs, std::string path, int lib_fd);
  absl::Status Lock(bool exclusive);
  absl::Status WriteSmallFile(const std::string& rel, const std::string& data, bool durable);
  absl::StatusOr<std::optional<std::string>> ReadSmallFile(const std::string& rel);
  std::mutex& ObjectLock(const Sha256Digest& hash) { return object_locks_[hash[0]]; }

  FileSystem* fs_;
  std::string path_;
  int lib_fd_;
  std::array<std::mutex, 256> object_locks_;
  std::mutex pkglib_lock_;
  std::mutex dirs_lock_;
  std::vector<bool> object_dir_known_;  // by the first 4 hex digits, 65536 entries
};

}  // namespace dpr::contentlib
