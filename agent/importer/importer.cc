#include "agent/importer/importer.h"

#include <fcntl.h>
#include <sys/statvfs.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "agent/contentlib/content_hash.h"
#include "agent/importer/tree_walker.h"
#include "common/status/fmt_absl.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"

namespace dpr::importer {
namespace {

using contentlib::ContentId;
using contentlib::ContentLibrary;
using Clock = std::chrono::steady_clock;

// Adds the time until destruction to *acc.
class Timer {
 public:
  explicit Timer(double* acc) : acc_(acc), start_(Clock::now()) {}
  ~Timer() { *acc_ += std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  double* acc_;
  Clock::time_point start_;
};

// Files up to the worker's buffer size (ImportOptions::buffer_bytes) are read
// whole, hashed, and written only if new. Larger ones are streamed in blocks
// of up to kBlock: copied while hashed when almost surely new (see
// Task::single_pass), else hashed first and copied only if new.
constexpr size_t kBlock = 4 << 20;
// Smaller staged files are left to the batch sync (a writeback call costs
// more than it saves for them).
constexpr uint64_t kWritebackMin = 256 << 10;
// Staged copies from this size on are written with O_DIRECT where the
// filesystem allows it: copying bulk bytes into the page cache and writing
// them back cost more CPU than hashing them (measured in the issue 3 note).
constexpr uint64_t kDirectMin = 128 << 10;

// Legacy files left in place, and why: "'rel' why; ...", the first few named.
class KeptNote {
 public:
  void Add(const std::string& rel, std::string_view why) {
    if (++count_ > kNamed) return;
    if (!text_.empty()) text_ += "; ";
    text_ += fmt::format("'{}' {}", rel, why);
  }
  // For a folder left for a reason that names no file.
  void Set(std::string why) {
    text_ = std::move(why);
    count_ = 1;
  }
  bool empty() const { return count_ == 0; }
  std::string Text() const {
    return count_ > kNamed ? fmt::format("{} (and {} more)", text_, count_ - kNamed) : text_;
  }

 private:
  static constexpr size_t kNamed = 3;
  std::string text_;
  size_t count_ = 0;
};

// A worker's buffer, aligned so O_DIRECT writes can be made from it.
class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t n)
      : data_(static_cast<uint8_t*>(std::aligned_alloc(kDirectIoAlign, n))), size_(n) {
    if (data_ == nullptr) throw std::bad_alloc();
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data_); }
  uint8_t* data() { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_;
  size_t size_;
};

// A worker's writing thread: it writes one block of a copy while the worker
// reads and hashes the next, so a direct write, which returns only once the
// device has the bytes, does not leave the worker idle. One write at a time,
// so a file's writes land in order.
class BlockWriter {
 public:
  BlockWriter() : thread_([this] { Loop(); }) {}
  BlockWriter(const BlockWriter&) = delete;
  BlockWriter& operator=(const BlockWriter&) = delete;
  ~BlockWriter() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  // Starts `write`; the previous one must have been waited for.
  void Start(std::function<absl::Status()> write) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = std::move(write);
      busy_ = true;
    }
    cv_.notify_all();
  }
  // Waits for the write started last, if any; its status.
  absl::Status Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !busy_; });
    return std::exchange(status_, absl::OkStatus());
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return job_ != nullptr || stop_; });
      if (job_ == nullptr) return;
      auto job = std::exchange(job_, nullptr);
      lock.unlock();
      absl::Status s = job();
      lock.lock();
      status_ = std::move(s);
      busy_ = false;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::function<absl::Status()> job_;
  bool busy_ = false, stop_ = false;
  absl::Status status_;
  std::thread thread_;  // last: starts once the rest is initialized
};

struct FileResult {
  Sha256Digest hash{};
  bool is_new = false;  // this run put the object in FileLib (copy or link)
};

struct PackageState {
  PackageSpec spec;
  ContentId id;
  ScopedFd root;
  WalkedTree tree;
  bool link_ok = false;
  std::vector<FileResult> results;
  std::atomic<size_t> pending{0};
  std::atomic<uint64_t> files_done{0}, bytes_done{0};
  std::mutex mu;  // guards error, stored/dedup counters, last_progress
  absl::Status error;
  uint64_t bytes_stored = 0, bytes_dedup = 0;
  Clock::time_point last_progress{};
  std::string staged_content;
  contentlib::ContentRecord record;  // set by Finalize
};

struct Task {
  PackageState* pkg;
  size_t file;
  std::shared_ptr<ScopedFd> dir;
  // A file larger than the buffer that is almost surely new: the library
  // held no object when the run began and no file walked before it in this
  // run has its size (SizesSeen). It is copied while it is hashed, so it is
  // read and hashed once instead of twice; were it a duplicate after all,
  // the copy is dropped.
  bool single_pass = false;
};

// What a worker owns: its buffer, its writing thread, and the file whose
// copy that thread may still be writing.
struct WorkerContext {
  explicit WorkerContext(size_t buffer_bytes)
      : buf(buffer_bytes), half((buffer_bytes / 2) & ~(kDirectIoAlign - 1)) {}
  AlignedBuffer buf;
  // Halves of buf, multiples of kDirectIoAlign for direct writes; 0 when buf
  // is too small to split.
  const size_t half;
  BlockWriter writer;
  // A file read whole into one half and written from it on `writer` while
  // the worker goes on: it is reported finished only once the write and
  // close are done, so no batch can publish it before.
  struct Deferred {
    Task task;
    ScopedFd staged;
    uint64_t size = 0;
    bool tried_direct = false, direct = false;
    uint8_t* half = nullptr;  // the half being written from
  };
  std::optional<Deferred> deferred;
};

// The sizes of the large files walked so far, in fixed memory (64 KiB): a
// set bit may stand for another size too, which only costs that file the
// two-pass copy.
class SizesSeen {
 public:
  // Whether `size` may have been seen before; records it.
  bool CheckAndSet(uint64_t size) {
    const uint64_t bit = (size * 0x9E3779B97F4A7C15ull) >> (64 - kBitsLog2);
    uint64_t& word = words_[bit / 64];
    const uint64_t mask = uint64_t{1} << (bit % 64);
    const bool seen = (word & mask) != 0;
    word |= mask;
    return seen;
  }

 private:
  static constexpr int kBitsLog2 = 19;
  std::vector<uint64_t> words_ = std::vector<uint64_t>((size_t{1} << kBitsLog2) / 64);
};

// An object this run is putting into FileLib, not yet published.
struct PendingObject {
  std::string staged;    // temp name in FileLib, or "" when hard-linked in place
  size_t users = 0;      // successful packages of the batch that use it
  size_t relied_on = 0;  // files that took it as stored while it was pending
};

class Importer {
 public:
  Importer(ContentLibrary& lib, const ImportOptions& options, const ImportCallback& cb)
      : lib_(lib), fs_(lib.fs()), options_(options), cb_(cb) {}

  absl::StatusOr<ImportSummary> Run(const std::vector<PackageSpec>& specs);

 private:
  void Emit(const ImportEvent& e) {
    std::lock_guard<std::mutex> lock(event_mu_);
    if (cb_) cb_(e);
  }
  ImportEvent Event(ImportEvent::Kind kind, const PackageState& p) {
    ImportEvent e{};
    e.kind = kind;
    e.package_id = p.spec.package_id;
    e.content_id = p.id.ToString();
    e.files_total = p.tree.files.size();
    e.bytes_total = p.tree.bytes;
    e.files_done = p.files_done.load();
    e.bytes_done = p.bytes_done.load();
    return e;
  }

  absl::StatusOr<std::unique_ptr<PackageState>> Prepare(const PackageSpec& spec, bool* already);
  absl::Status Dispatch(PackageState* pkg);
  void WorkerLoop();
  // Sets *deferred when the file's copy is left writing on w.writer: then
  // FinishDeferred reports the file, not the caller.
  absl::Status ProcessFile(const Task& t, WorkerContext& w, FileResult* out, bool* fatal,
                           bool* deferred);
  // Waits for w's deferred copy, if any, closes it and reports its file.
  void FinishDeferred(WorkerContext& w);
  // The single-pass copy of a large file (Task::single_pass); `st` is its
  // stat when opened.
  absl::Status CopyWhileHashing(int fd, const struct stat& st, uint64_t size, WorkerContext& w,
                                FileResult* out, bool* fatal);
  // Copies [0, size) of `src` into the staged object `dst`, adding the bytes
  // to *sha as they are written. The buffer's halves take turns: reading and
  // hashing one block overlaps writing the one before. A read that comes
  // back empty gives `shrank`; *write_failed tells a library error (the
  // run's) from a legacy one (the package's).
  absl::Status StreamToStaged(int src, int dst, uint64_t size, WorkerContext& w, Sha256* sha,
                              bool* direct, const absl::Status& shrank, bool* write_failed);
  // Whether the file behind `fd` still has the size and mtime of `st`.
  absl::Status CheckUnchanged(int fd, const struct stat& st, std::string_view while_what);
  // Makes a written staged object durable (per file, or left to the batch
  // sync with writeback started early) and closes it.
  absl::Status CloseStaged(ScopedFd& fd, uint64_t size, bool tried_direct);
  // Writes data[0, n) at `off` (a multiple of kDirectIoAlign) of a staged
  // object: while *direct, the aligned head with O_DIRECT and the tail, which
  // ends the file, through the page cache.
  absl::Status WriteStaged(int fd, const uint8_t* data, size_t n, uint64_t off, bool* direct);
  void FileFinished(PackageState* pkg, const WalkedFile& f, absl::Status status, bool fatal);
  absl::Status WaitAllInFlight();
  absl::Status Finalize(std::unique_ptr<PackageState> pkg);
  // Run by the worker that finishes a package's last file: content hash and
  // the staged DataLib tree. Sets pkg->error, or *fatal for library errors.
  void StagePackage(PackageState* pkg, absl::Status* fatal);
  // Hands the finished batch and the objects its packages use to a flush
  // thread (after the previous flush has finished) and returns at once, so
  // workers go on with the next batch while this one is published.
  absl::Status StartFlush();
  absl::Status WaitForFlush();
  absl::Status Flush(std::vector<std::unique_ptr<PackageState>> batch,
                     std::vector<std::pair<Sha256Digest, PendingObject>> objects);
  // A batch of the last few packages would be flushed on its own after the
  // workers are done, two syncs that overlap nothing (~0.15 s for 3 packages
  // of the 2 GiB bench corpus). When what is left looks like at most an eighth
  // of a batch (by count, and by size at the average package so far), it joins
  // the current batch instead. A larger rest is better hashed while the
  // current batch is flushed.
  bool SmallRemainder(size_t packages_left, uint64_t average_bytes) const {
    return packages_left * 8 <= options_.batch_packages &&
           packages_left * average_bytes * 8 <= options_.batch_bytes;
  }
  absl::Status TimedSync() {
    Timer t(&sync_seconds_);
    return lib_.Sync();
  }
  // Runs fn(0..n-1) on up to jobs_ threads (the workers are idle while a
  // batch is flushed); the first error stops the rest and is returned.
  absl::Status ParallelFor(size_t n, const std::function<absl::Status(size_t)>& fn);
  // Removes the package's walked files that still have the inode, size and
  // mtime they were walked with, then its folders. A file that differs is
  // left, named in *kept: the library holds the bytes it had.
  void RemoveLegacy(const PackageState& pkg, bool* removed, KeptNote* kept);
  // For a package committed by an earlier run: keeps in pkg->tree only the
  // files the committed content holds (same path, size and time, and bytes
  // that are the object's own inode or hash to it); *kept names the rest.
  absl::Status KeepOnlyCommittedFiles(PackageState* pkg, KeptNote* kept);
  // The legacy clean-up of a package committed by an earlier run. Returns
  // what was kept and why ("" when nothing was).
  std::string FinishEarlierCleanUp(PackageState* pkg, bool* removed);
  // The batch whose commit the last sync made durable: its legacy files go
  // and its packages are reported done.
  void FinishCommitted(std::vector<std::unique_ptr<PackageState>> batch);
  void FailPackage(const PackageState& pkg, absl::Status status);
  // Under pending_mu_: whether this run has already taken the object on
  // (pending or being published); a pending one counts one more reliance.
  bool TakenLocked(const Sha256Digest& hash);
  // Copy: whether the file's object is new to FileLib and this run, claiming
  // it if so (one lookup in FileLib).
  absl::Status Decide(const Sha256Digest& hash, bool* is_new);
  // Link: claims the object and links the file in under its name, with no
  // lookup first (~13,500 fewer fstatat calls in the 2 GiB bench); a name
  // already there makes the file a duplicate.
  absl::Status LinkIn(int fd, const Sha256Digest& hash, bool* is_new, bool* fatal);
  // Gives back an object this run claimed (Decide set *is_new) and whose
  // copy failed, deleting the copy, if no other file has taken it as stored
  // meanwhile. Returns whether it did; a later file may then claim it anew.
  bool Unclaim(const Sha256Digest& hash, ContentLibrary::Staged* staged);
  absl::Status SpaceError(const absl::Status& cause);

  ContentLibrary& lib_;
  FileSystem* fs_;
  ImportOptions options_;
  const ImportCallback& cb_;
  ImportSummary summary_;
  std::mutex event_mu_;

  // Work queue (bounded) and completion. A full queue makes the dispatcher
  // wait until it is half empty: waking it for every file taken cost a
  // futex wake and a context switch per file (~5 % of a link conversion's CPU).
  std::mutex mu_;
  std::condition_variable work_cv_, space_cv_, done_cv_;
  std::deque<Task> queue_;
  static constexpr size_t kQueueLimit = 256, kQueueResume = kQueueLimit / 2;
  bool stopping_ = false;
  absl::Status fatal_;
  std::vector<std::unique_ptr<PackageState>> in_flight_;
  size_t completed_ = 0;  // in-flight packages whose files are all done

  // Objects put into FileLib by this batch.
  std::mutex pending_mu_;
  std::map<Sha256Digest, PendingObject> pending_;
  // Objects a flush has taken from pending_ and not yet put under their
  // final names. A worker meeting one takes it as stored: if it linked the
  // same bytes meanwhile, both would count as the object's creator and the
  // later flush would write its reference list afresh, losing the users of
  // the earlier one.
  std::set<Sha256Digest> publishing_;

  std::vector<std::unique_ptr<PackageState>> batch_;
  // Committed (PkgLib INIs renamed in) but not yet synced: the next flush's
  // first sync, or the last one of Run, makes it durable; only then do its
  // legacy files go. One sync per batch saved. Touched by one flush at a
  // time, then by Run after the last flush.
  std::vector<std::unique_ptr<PackageState>> unsynced_commit_;
  std::atomic<uint64_t> batch_bytes_{0};
  std::future<absl::Status> flushing_;
  std::mutex summary_mu_;  // summary_ counters touched by the flush thread too
  dev_t lib_dev_ = 0;
  size_t buffer_bytes_ = 0;     // per worker, a multiple of kDirectIoAlign
  bool fresh_library_ = false;  // no FileLib object when the run began
  SizesSeen large_sizes_;       // of files over the buffer, walked so far
  int jobs_ = 2;
  double sync_seconds_ = 0;
};

absl::Status Importer::SpaceError(const absl::Status& cause) {
  if (cause.code() != absl::StatusCode::kResourceExhausted) return cause;
  // RESOURCE_EXHAUSTED is also what running out of open files maps to: an
  // admin told "full" with gigabytes free would look for the wrong cause.
  const std::optional<int> err = ErrnoOf(cause);
  if (err == EMFILE || err == ENFILE) {
    return absl::ResourceExhaustedError(fmt::format(
        "out of open files ({}); raise the limit (ulimit -n, or LimitNOFILE= for the service) "
        "and run again: what was converted stays",
        cause.message()));
  }
  if (err && *err != ENOSPC && *err != EDQUOT) return cause;
  struct statvfs vfs {};
  uint64_t free_mib = 0;
  if (fs_->StatVfs(lib_.lib_fd(), &vfs).ok()) {
    free_mib = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize >> 20;
  }
  return absl::ResourceExhaustedError(
      fmt::format("library on '{}' is full: need {} MiB more for this batch, have {} MiB ({})",
                  lib_.path(), (batch_bytes_.load() >> 20) + 1, free_mib, cause.message()));
}

absl::StatusOr<std::unique_ptr<PackageState>> Importer::Prepare(const PackageSpec& spec,
                                                                bool* already) {
  auto pkg = std::make_unique<PackageState>();
  pkg->spec = spec;
  ASSIGN_OR_RETURN(pkg->id, contentlib::MakeContentId(spec.package_id, spec.version));
  ASSIGN_OR_RETURN(*already, lib_.IsCommitted(pkg->id));
  if (*already) return pkg;
  ASSIGN_OR_RETURN(int fd,
                   fs_->OpenAt(AT_FDCWD, spec.location, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  pkg->root = ScopedFd(fs_, fd);
  {
    Timer t(&summary_.seconds_walk);
    ASSIGN_OR_RETURN(pkg->tree, WalkPackage(fs_, fd));
  }
  const bool same_fs = pkg->tree.dirs[0].dev == lib_dev_;
  if (options_.mode == ImportMode::kLink && !same_fs) {
    return absl::FailedPreconditionError(
        "link mode needs the legacy folder and the library on one filesystem (use --mode copy or "
        "auto)");
  }
  pkg->link_ok = options_.mode != ImportMode::kCopy && same_fs;
  pkg->results.resize(pkg->tree.files.size());
  return pkg;
}

absl::Status Importer::Dispatch(PackageState* pkg) {
  pkg->pending = pkg->tree.files.size();
  if (pkg->tree.files.empty()) {
    absl::Status fatal_status;
    StagePackage(pkg, &fatal_status);
    std::lock_guard<std::mutex> lock(mu_);
    if (!fatal_status.ok() && fatal_.ok()) fatal_ = SpaceError(fatal_status);
    ++completed_;
    return fatal_status;
  }
  WalkedDirs dirs(fs_, pkg->root.get(), pkg->tree);
  std::shared_ptr<ScopedFd> dir;
  size_t dir_index = SIZE_MAX;
  for (size_t i = 0; i < pkg->tree.files.size(); ++i) {
    const WalkedFile& f = pkg->tree.files[i];
    if (f.dir != dir_index) {
      auto opened = dirs.Get(f.dir);
      if (!opened.ok()) {
        // Count the rest as failed so the package completes.
        for (size_t k = i; k < pkg->tree.files.size(); ++k) {
          FileFinished(pkg, pkg->tree.files[k], opened.status(), false);
        }
        return absl::OkStatus();
      }
      dir = *std::move(opened);
      dir_index = f.dir;
    }
    // Only this thread touches large_sizes_.
    const bool single_pass =
        fresh_library_ && f.size > buffer_bytes_ && !large_sizes_.CheckAndSet(f.size);
    std::unique_lock<std::mutex> lock(mu_);
    if (queue_.size() >= kQueueLimit) {
      space_cv_.wait(lock, [&] { return queue_.size() <= kQueueResume || !fatal_.ok(); });
    }
    if (!fatal_.ok()) return fatal_;
    queue_.push_back({pkg, i, dir, single_pass});
    work_cv_.notify_one();
  }
  return absl::OkStatus();
}

bool Importer::TakenLocked(const Sha256Digest& hash) {
  auto it = pending_.find(hash);
  if (it != pending_.end()) ++it->second.relied_on;
  return it != pending_.end() || publishing_.count(hash) > 0;
}

absl::Status Importer::Decide(const Sha256Digest& hash, bool* is_new) {
  {
    std::lock_guard<std::mutex> lock(pending_mu_);
    if (TakenLocked(hash)) {
      *is_new = false;
      return absl::OkStatus();
    }
  }
  ASSIGN_OR_RETURN(bool exists, lib_.HasObject(hash));
  std::lock_guard<std::mutex> lock(pending_mu_);
  if (exists || TakenLocked(hash)) {
    *is_new = false;
  } else {
    pending_[hash] = PendingObject{};
    *is_new = true;
  }
  return absl::OkStatus();
}

absl::Status Importer::LinkIn(int fd, const Sha256Digest& hash, bool* is_new, bool* fatal) {
  {
    std::lock_guard<std::mutex> lock(pending_mu_);
    if (TakenLocked(hash)) {
      *is_new = false;
      return absl::OkStatus();
    }
    pending_[hash] = PendingObject{};
  }
  // As in ProcessFile: other files may count on the claim from here on.
  *fatal = true;
  ASSIGN_OR_RETURN(bool created, lib_.LinkObject(fd, hash));
  if (!created) {
    // The object was in FileLib already: the file is a duplicate, and the
    // object keeps its reference list (a flush writes a claimed object's
    // list afresh). Files that took the claim meanwhile took it as stored,
    // which it is.
    std::lock_guard<std::mutex> lock(pending_mu_);
    pending_.erase(hash);
  }
  *is_new = created;
  return absl::OkStatus();
}

bool Importer::Unclaim(const Sha256Digest& hash, ContentLibrary::Staged* staged) {
  {
    std::lock_guard<std::mutex> lock(pending_mu_);
    auto it = pending_.find(hash);
    if (it == pending_.end() || it->second.relied_on > 0) return false;
    pending_.erase(it);
  }
  staged->fd.Reset();
  // A temp left by a failed unlink is swept by the next run.
  (void)fs_->UnlinkAt(lib_.lib_fd(), staged->name, 0);
  return true;
}

absl::Status Importer::WriteStaged(int fd, const uint8_t* data, size_t n, uint64_t off,
                                   bool* direct) {
  if (*direct) {
    const size_t head = n & ~(kDirectIoAlign - 1);
    absl::Status s = head > 0 ? fs_->PWriteAll(fd, data, head, off) : absl::OkStatus();
    if (s.ok() && head == n) return s;
    // The tail, or everything if this filesystem refused the direct write
    // after all (some check only alignment rules at write time).
    if (!s.ok() && !absl::IsInvalidArgument(s)) return s;
    RETURN_IF_ERROR(fs_->SetDirectIo(fd, false));
    *direct = false;
    if (s.ok()) {
      data += head;
      n -= head;
      off += head;
    }
  }
  return fs_->PWriteAll(fd, data, n, off);
}

absl::Status Importer::ProcessFile(const Task& t, WorkerContext& w, FileResult* out, bool* fatal,
                                   bool* deferred) {
  AlignedBuffer& buf = w.buf;
  PackageState& pkg = *t.pkg;
  const WalkedFile& f = pkg.tree.files[t.file];
  ASSIGN_OR_RETURN(
      int fd, fs_->OpenAt(t.dir->get(), f.name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK));
  ScopedFd src(fs_, fd);
  struct stat st {};
  RETURN_IF_ERROR(fs_->Fstat(fd, &st));
  if (!S_ISREG(st.st_mode) || st.st_dev != f.dev || st.st_ino != f.ino ||
      static_cast<uint64_t>(st.st_size) != f.size || MtimeNs(st) != f.mtime_ns) {
    return absl::FailedPreconditionError("changed since the package was walked");
  }
  // A hard-linked file may have names outside the package, and a kept
  // package share stays writable: linking either would let later writes
  // change a library object. Copy those.
  const bool link = pkg.link_ok && st.st_nlink == 1 && !pkg.spec.keep_package_share;
  const bool whole = f.size <= buf.size();
  // A file that fits in the half the writer is not using is read there;
  // anything else waits for the writer to be done with the buffer.
  uint8_t* data = buf.data();
  if (whole && f.size <= w.half && w.deferred.has_value()) {
    data = w.deferred->half == buf.data() ? buf.data() + w.half : buf.data();
  } else {
    FinishDeferred(w);
  }
  if (!whole && !link && t.single_pass) return CopyWhileHashing(fd, st, f.size, w, out, fatal);
  const size_t block = std::min(buf.size(), kBlock);
  Sha256 sha;
  if (whole) {
    uint64_t got = 0;
    while (got < f.size) {
      ASSIGN_OR_RETURN(size_t n, fs_->PRead(fd, data + got, f.size - got, got));
      if (n == 0) break;
      got += n;
    }
    if (got != f.size) return absl::FailedPreconditionError("shrank while being read");
    sha.Update(data, f.size);
  } else {
    for (uint64_t off = 0; off < f.size;) {
      ASSIGN_OR_RETURN(size_t n,
                       fs_->PRead(fd, buf.data(), std::min<uint64_t>(block, f.size - off), off));
      if (n == 0) return absl::FailedPreconditionError("shrank while being read");
      sha.Update(buf.data(), n);
      off += n;
    }
  }
  out->hash = sha.Finish();
  if (link) {
    RETURN_IF_ERROR(CheckUnchanged(fd, st, "hashed"));
    return LinkIn(fd, out->hash, &out->is_new, fatal);
  }
  RETURN_IF_ERROR(Decide(out->hash, &out->is_new));
  if (!out->is_new) return absl::OkStatus();
  // From here on this run owns the object: a failure stops the whole run,
  // because other packages may already count on it.
  *fatal = true;
  ASSIGN_OR_RETURN(ContentLibrary::Staged staged, lib_.CreateStagingFile(out->hash));
  {
    std::lock_guard<std::mutex> lock(pending_mu_);
    pending_[out->hash].staged = staged.name;
  }
  bool direct = f.size >= kDirectMin && fs_->SetDirectIo(staged.fd.get(), true).ok();
  const bool tried_direct = direct;
  if (whole && direct && f.size <= w.half) {
    // A direct write returns only once the device has the bytes: leave it
    // to the writer and go on with the next file in the other half.
    FinishDeferred(w);
    w.deferred.emplace();
    WorkerContext::Deferred& d = *w.deferred;
    d.task = t;
    d.staged = std::move(staged.fd);
    d.size = f.size;
    d.tried_direct = tried_direct;
    d.direct = true;
    d.half = data;
    w.writer.Start(
        [this, &d] { return WriteStaged(d.staged.get(), d.half, d.size, 0, &d.direct); });
    *deferred = true;
    return absl::OkStatus();
  }
  if (whole) {
    RETURN_IF_ERROR(WriteStaged(staged.fd.get(), data, f.size, 0, &direct));
  } else {
    Sha256 verify;  // the bytes as written must still hash to the name
    bool write_failed = false;
    absl::Status copied =
        StreamToStaged(fd, staged.fd.get(), f.size, w, &verify, &direct,
                       absl::FailedPreconditionError("shrank while being copied"), &write_failed);
    if (copied.ok() && verify.Finish() != out->hash) {
      copied = absl::FailedPreconditionError("changed while being copied");
    }
    if (!copied.ok()) {
      // A failed library write stops the run. A legacy file that changed
      // under its copy fails only its package, unless another file already
      // took the object as stored: then the run stops, as it cannot keep
      // that promise.
      if (!write_failed && Unclaim(out->hash, &staged)) *fatal = false;
      return copied;
    }
  }
  RETURN_IF_ERROR(CloseStaged(staged.fd, f.size, tried_direct));
  *fatal = false;
  return absl::OkStatus();
}

void Importer::FinishDeferred(WorkerContext& w) {
  if (!w.deferred.has_value()) return;
  WorkerContext::Deferred& d = *w.deferred;
  absl::Status status = w.writer.Wait();
  if (status.ok()) status = CloseStaged(d.staged, d.size, d.tried_direct);
  Task t = std::move(d.task);
  w.deferred.reset();  // closes the staged file if the write failed
  const WalkedFile& f = t.pkg->tree.files[t.file];
  t.dir.reset();
  // The object was claimed for this run: failing to store it stops the run.
  FileFinished(t.pkg, f, status, !status.ok());
}

absl::Status Importer::StreamToStaged(int src, int dst, uint64_t size, WorkerContext& w,
                                      Sha256* sha, bool* direct, const absl::Status& shrank,
                                      bool* write_failed) {
  // A buffer too small to split (w.half == 0) is used whole: each read
  // then waits for the write before it.
  const bool overlap = w.half > 0;
  const size_t block = std::min(overlap ? w.half : w.buf.size(), kBlock);
  bool writing = false;
  auto wait = [&]() -> absl::Status {
    if (!writing) return absl::OkStatus();
    writing = false;
    absl::Status s = w.writer.Wait();
    if (!s.ok()) *write_failed = true;
    return s;
  };
  // Never leave with a write in flight: it uses the buffer and `dst`.
  absl::Cleanup drain = [&] { (void)wait(); };
  for (uint64_t off = 0, i = 0; off < size; ++i) {
    uint8_t* p = w.buf.data() + (overlap ? (i % 2) * w.half : 0);
    if (!overlap) RETURN_IF_ERROR(wait());
    ASSIGN_OR_RETURN(size_t n, fs_->PRead(src, p, std::min<uint64_t>(block, size - off), off));
    if (n == 0) return shrank;
    sha->Update(p, n);
    RETURN_IF_ERROR(wait());
    w.writer.Start([this, dst, p, n, off, direct] { return WriteStaged(dst, p, n, off, direct); });
    writing = true;
    off += n;
  }
  return wait();
}

absl::Status Importer::CheckUnchanged(int fd, const struct stat& st, std::string_view while_what) {
  struct stat after {};
  RETURN_IF_ERROR(fs_->Fstat(fd, &after));
  if (after.st_size != st.st_size || after.st_mtim.tv_sec != st.st_mtim.tv_sec ||
      after.st_mtim.tv_nsec != st.st_mtim.tv_nsec) {
    return absl::FailedPreconditionError(fmt::format("changed while being {}", while_what));
  }
  return absl::OkStatus();
}

absl::Status Importer::CloseStaged(ScopedFd& fd, uint64_t size, bool tried_direct) {
  if (options_.fsync_each_file) {
    RETURN_IF_ERROR(fs_->Fsync(fd.get()));
  } else if (size >= kWritebackMin && !tried_direct) {
    // Let the disk start on these bytes now rather than at the batch's sync.
    (void)fs_->StartWriteback(fd.get());
  }
  return fd.Close();
}

absl::Status Importer::CopyWhileHashing(int fd, const struct stat& st, uint64_t size,
                                        WorkerContext& w, FileResult* out, bool* fatal) {
  // Failing to create or write a library file stops the run; a legacy file
  // that cannot be read fails only its package.
  *fatal = true;
  ASSIGN_OR_RETURN(ContentLibrary::Staged staged, lib_.CreateStagingFile());
  *fatal = false;
  // Until Decide hands it to the batch, the copy is this worker's alone.
  bool claimed = false;
  absl::Cleanup drop = [&] {
    if (claimed) return;
    staged.fd.Reset();
    (void)fs_->UnlinkAt(lib_.lib_fd(), staged.name, 0);
  };
  bool direct = size >= kDirectMin && fs_->SetDirectIo(staged.fd.get(), true).ok();
  const bool tried_direct = direct;
  Sha256 sha;  // of the bytes as written
  bool write_failed = false;
  absl::Status copied =
      StreamToStaged(fd, staged.fd.get(), size, w, &sha, &direct,
                     absl::FailedPreconditionError("shrank while being read"), &write_failed);
  if (!copied.ok()) {
    *fatal = write_failed;
    return copied;
  }
  out->hash = sha.Finish();
  RETURN_IF_ERROR(CheckUnchanged(fd, st, "copied"));
  RETURN_IF_ERROR(Decide(out->hash, &out->is_new));
  if (!out->is_new) return absl::OkStatus();  // a duplicate after all: the copy goes
  *fatal = true;
  claimed = true;
  {
    std::lock_guard<std::mutex> lock(pending_mu_);
    pending_[out->hash].staged = staged.name;
  }
  RETURN_IF_ERROR(lib_.EnsureObjectDir(out->hash));
  RETURN_IF_ERROR(CloseStaged(staged.fd, size, tried_direct));
  *fatal = false;
  return absl::OkStatus();
}

void Importer::FileFinished(PackageState* pkg, const WalkedFile& f, absl::Status status,
                            bool fatal) {
  if (!status.ok()) {
    status = Annotate(status, fmt::format("'{}'", f.rel));
    if (fatal) {
      std::lock_guard<std::mutex> lock(mu_);
      if (fatal_.ok())
        fatal_ = SpaceError(Annotate(status, fmt::format("package '{}'", pkg->spec.package_id)));
      space_cv_.notify_all();
      work_cv_.notify_all();
      done_cv_.notify_all();
    }
    std::lock_guard<std::mutex> lock(pkg->mu);
    if (pkg->error.ok()) pkg->error = status;
  }
  pkg->files_done.fetch_add(1);
  pkg->bytes_done.fetch_add(f.size);
  auto report = [&] {
    ImportEvent e = Event(ImportEvent::Kind::kPackageProgress, *pkg);
    e.current_file = f.rel;
    Emit(e);
  };
  // A due progress event goes out before this file stops counting as
  // pending: from then on only the worker of the package's last file may
  // touch it, as the run frees it once that one is done (at once when the
  // run stops on an error; ASan caught a worker reading a freed package).
  {
    std::unique_lock<std::mutex> lock(pkg->mu);
    auto now = Clock::now();
    if (now - pkg->last_progress > std::chrono::milliseconds(200)) {
      pkg->last_progress = now;
      lock.unlock();
      report();
    }
  }
  if (pkg->pending.fetch_sub(1) != 1) return;
  report();  // the last file: every file of the package is counted now
  {
    absl::Status fatal_status;
    StagePackage(pkg, &fatal_status);
    std::lock_guard<std::mutex> lock(mu_);
    if (!fatal_status.ok() && fatal_.ok()) fatal_ = SpaceError(fatal_status);
    ++completed_;
    done_cv_.notify_all();
    space_cv_.notify_all();
    work_cv_.notify_all();
  }
}

void Importer::StagePackage(PackageState* pkg, absl::Status* fatal) {
  {
    std::lock_guard<std::mutex> lock(pkg->mu);
    if (!pkg->error.ok()) return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fatal_.ok()) return;
  }
  contentlib::ContentRecord rec;
  rec.id = pkg->id;
  for (size_t i = 1; i < pkg->tree.dirs.size(); ++i) rec.dirs.push_back(pkg->tree.dirs[i].rel);
  std::vector<contentlib::HashedFile> hashed;
  hashed.reserve(pkg->tree.files.size());
  for (size_t i = 0; i < pkg->tree.files.size(); ++i) {
    const WalkedFile& f = pkg->tree.files[i];
    rec.files.push_back({f.rel, f.size, contentlib::UnixNanosToFiletime(f.mtime_ns),
                         contentlib::Win32Attributes(f.mode), pkg->results[i].hash});
    hashed.push_back({f.rel, pkg->results[i].hash});
  }
  auto content_hash = contentlib::ComputeContentHash(rec.dirs, hashed);
  if (!content_hash.ok()) {
    std::lock_guard<std::mutex> lock(pkg->mu);
    pkg->error = content_hash.status();
    return;
  }
  rec.content_hash = *content_hash;
  auto staged = lib_.StageContent(rec);
  if (!staged.ok()) {
    if (staged.status().code() == absl::StatusCode::kFailedPrecondition) {
      std::lock_guard<std::mutex> lock(pkg->mu);
      pkg->error = staged.status();
    } else {
      *fatal = Annotate(staged.status(), fmt::format("package '{}'", pkg->spec.package_id));
    }
    return;
  }
  pkg->staged_content = *staged;
  rec.files.clear();  // only the id and content hash are needed from here on
  rec.dirs.clear();
  pkg->record = std::move(rec);
}

void Importer::WorkerLoop() {
  WorkerContext w(buffer_bytes_);
  for (;;) {
    Task t;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (queue_.empty() && w.deferred.has_value()) {
        // Nothing else to do: finish the copy so its package can complete.
        lock.unlock();
        FinishDeferred(w);
        continue;
      }
      work_cv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
      if (queue_.empty()) return;
      t = std::move(queue_.front());
      queue_.pop_front();
      // Pops go one at a time, so the size passes kQueueResume on the way down.
      if (queue_.size() == kQueueResume) space_cv_.notify_one();
    }
    const WalkedFile& f = t.pkg->tree.files[t.file];
    absl::Status status;
    bool fatal = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!fatal_.ok()) status = absl::CancelledError("the import stopped");
    }
    bool deferred = false;
    if (status.ok()) status = ProcessFile(t, w, &t.pkg->results[t.file], &fatal, &deferred);
    if (deferred) continue;
    t.dir.reset();
    FileFinished(t.pkg, f, status, fatal);
  }
}

absl::Status Importer::WaitAllInFlight() {
  {
    Timer t(&summary_.seconds_wait);
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return completed_ == in_flight_.size(); });
    completed_ = 0;
  }
  std::vector<std::unique_ptr<PackageState>> done;
  done.swap(in_flight_);
  for (auto& p : done) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!fatal_.ok()) return fatal_;
    }
    RETURN_IF_ERROR(Finalize(std::move(p)));
  }
  return absl::OkStatus();
}

void Importer::FailPackage(const PackageState& pkg, absl::Status status) {
  {
    std::lock_guard<std::mutex> lock(summary_mu_);
    ++summary_.packages_failed;
  }
  ImportEvent e = Event(ImportEvent::Kind::kPackageFailed, pkg);
  e.error = Annotate(status, fmt::format("package '{}'", pkg.spec.package_id));
  Emit(e);
}

absl::Status Importer::Finalize(std::unique_ptr<PackageState> pkg) {
  if (!pkg->error.ok()) {
    if (!pkg->staged_content.empty()) (void)lib_.RemoveStagedContent(pkg->staged_content);
    FailPackage(*pkg, pkg->error);
    return absl::OkStatus();
  }
  std::set<Sha256Digest> used;
  for (size_t i = 0; i < pkg->tree.files.size(); ++i) {
    const FileResult& r = pkg->results[i];
    (r.is_new ? pkg->bytes_stored : pkg->bytes_dedup) += pkg->tree.files[i].size;
    used.insert(r.hash);
  }
  {
    std::lock_guard<std::mutex> lock(pending_mu_);
    for (const auto& h : used) {
      auto it = pending_.find(h);
      if (it != pending_.end()) ++it->second.users;
    }
  }
  batch_.push_back(std::move(pkg));
  return absl::OkStatus();
}

// Publishes a batch so that no final name ever points at bytes that are not
// yet durable, and legacy files go only once their package is committed:
//   stage every INI as a temp file (objects and DataLib trees are staged
//   by the workers)
//   sync   (also makes the previous batch's commit durable)
//   remove the previous batch's legacy files
//   rename objects, reference lists, DataLib trees and DataLib INIs into place
//   sync
//   rename PkgLib INIs (the commit); its sync is the next batch's first
// Two syncs a batch: an object's list can be written before the object is
// in place because nothing else can create it meanwhile (publishing_).
absl::Status Importer::StartFlush() {
  RETURN_IF_ERROR(WaitForFlush());
  if (batch_.empty()) return absl::OkStatus();
  // Every package of the batch is finalized, so each object's user count is
  // final for it: take the objects some successful package uses. Objects
  // nobody used yet stay pending; a later batch may still dedup against them.
  std::vector<std::pair<Sha256Digest, PendingObject>> objects;
  {
    std::lock_guard<std::mutex> lock(pending_mu_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.users > 0) {
        publishing_.insert(it->first);
        objects.emplace_back(it->first, std::move(it->second));
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
  }
  batch_bytes_ = 0;
  flushing_ = std::async(std::launch::async,
                         [this, batch = std::move(batch_), objects = std::move(objects)]() mutable {
                           absl::Status s = Flush(std::move(batch), std::move(objects));
                           if (!s.ok()) {
                             std::lock_guard<std::mutex> lock(mu_);
                             if (fatal_.ok()) fatal_ = s;
                             space_cv_.notify_all();
                             work_cv_.notify_all();
                             done_cv_.notify_all();
                           }
                           return s;
                         });
  batch_.clear();
  return absl::OkStatus();
}

absl::Status Importer::WaitForFlush() {
  if (!flushing_.valid()) return absl::OkStatus();
  return flushing_.get();
}

absl::Status Importer::Flush(std::vector<std::unique_ptr<PackageState>> batch_,
                             std::vector<std::pair<Sha256Digest, PendingObject>> objects) {
  if (batch_.empty() && objects.empty()) return absl::OkStatus();
  Timer flush_timer(&summary_.seconds_publish);
  // A worker decided each of these objects was in neither FileLib nor this
  // run's pending objects, and since then only this flush may create it: a
  // worker meeting it now takes it as stored (publishing_). So each is new
  // to FileLib, and its reference list is written afresh.
  std::set<Sha256Digest> new_objects;
  for (const auto& [hash, _] : objects) new_objects.insert(hash);

  // One reference-list rewrite per object for the whole batch.
  struct Users {
    Sha256Digest hash{};
    uint64_t size = 0;
    std::vector<ContentId> ids;
  };
  std::map<Sha256Digest, Users> by_hash;
  std::map<std::string, std::vector<uint32_t>> versions;
  for (const auto& pkg : batch_) {
    for (size_t i = 0; i < pkg->tree.files.size(); ++i) {
      Users& u = by_hash[pkg->results[i].hash];
      u.hash = pkg->results[i].hash;
      u.size = pkg->tree.files[i].size;
      if (u.ids.empty() || !(u.ids.back() == pkg->id)) u.ids.push_back(pkg->id);
    }
    versions[pkg->id.package_id].push_back(pkg->id.version);
  }
  std::vector<const Users*> lists;
  for (const auto& [_, u] : by_hash) lists.push_back(&u);
  std::vector<std::pair<std::string, std::vector<uint32_t>>> commits(versions.begin(),
                                                                     versions.end());

  // Stage every INI as a temp file: reference lists, DataLib INIs, PkgLib INIs.
  const size_t n_lists = lists.size(), n_contents = batch_.size();
  std::vector<std::pair<std::string, std::string>> staged(n_lists + n_contents + commits.size());
  RETURN_IF_ERROR(SpaceError(ParallelFor(staged.size(), [&](size_t i) -> absl::Status {
    std::string rel, text;
    if (i < n_lists) {
      const Users& u = *lists[i];
      ASSIGN_OR_RETURN(auto updated, lib_.FileLibIniWithUsers(u.hash, u.size, u.ids,
                                                              new_objects.count(u.hash) > 0));
      if (!updated.has_value()) return absl::OkStatus();
      rel = contentlib::FileLibIni(ToHex(u.hash));
      text = std::move(*updated);
    } else if (i < n_lists + n_contents) {
      const PackageState& pkg = *batch_[i - n_lists];
      rel = contentlib::DataLibIni(pkg.id);
      text = ContentLibrary::DataLibIniText(pkg.record);
    } else {
      const auto& [package_id, vs] = commits[i - n_lists - n_contents];
      rel = contentlib::PkgLibIni(package_id);
      ASSIGN_OR_RETURN(text, lib_.PkgLibIniWith(package_id, vs));
    }
    ASSIGN_OR_RETURN(std::string tmp, lib_.StageFile(rel, text));
    if (options_.fsync_each_file) RETURN_IF_ERROR(lib_.FsyncPath(tmp));
    staged[i] = {std::move(tmp), std::move(rel)};
    return absl::OkStatus();
  })));

  // Makes everything staged durable, and the previous batch's commit too.
  RETURN_IF_ERROR(SpaceError(TimedSync()));
  FinishCommitted(std::move(unsynced_commit_));
  unsynced_commit_.clear();

  // Objects, reference lists, DataLib trees and INIs into place.
  const size_t n_objects = objects.size();
  RETURN_IF_ERROR(ParallelFor(n_objects + n_lists + n_contents, [&](size_t i) -> absl::Status {
    if (i < n_objects) {
      const auto& [hash, obj] = objects[i];
      if (obj.staged.empty()) return absl::OkStatus();  // hard-linked in place by the worker
      absl::Status s = lib_.PublishStaged(obj.staged, hash);
      if (absl::IsAlreadyExists(s)) {
        // Its list was written as if new: stop before anything refers to it.
        return absl::InternalError(fmt::format(
            "FileLib object {} appeared while this run was publishing it (is another import "
            "writing to this library?)",
            ToHex(hash)));
      }
      return s;
    }
    i -= n_objects;
    if (i >= n_lists) {
      PackageState& pkg = *batch_[i - n_lists];
      RETURN_IF_ERROR(lib_.PublishContentTree(pkg.id, pkg.staged_content));
      pkg.staged_content.clear();
    }
    if (staged[i].first.empty()) return absl::OkStatus();
    return lib_.PublishFile(staged[i].first, staged[i].second);
  }));
  {
    std::lock_guard<std::mutex> lock(pending_mu_);
    for (const auto& [hash, _] : objects) publishing_.erase(hash);
  }
  RETURN_IF_ERROR(SpaceError(TimedSync()));

  // The commit: PkgLib INIs. Its sync is the next flush's first, or the
  // last one of Run; the legacy files wait for it.
  for (size_t i = n_lists + n_contents; i < staged.size(); ++i) {
    RETURN_IF_ERROR(lib_.PublishFile(staged[i].first, staged[i].second));
  }
  unsynced_commit_ = std::move(batch_);
  std::lock_guard<std::mutex> lock(summary_mu_);
  ++summary_.batches;
  return absl::OkStatus();
}

void Importer::FinishCommitted(std::vector<std::unique_ptr<PackageState>> batch) {
  if (batch.empty()) return;
  // Legacy files may go now.
  std::vector<char> removed(batch.size(), 0);
  std::vector<KeptNote> kept(batch.size());
  (void)ParallelFor(batch.size(), [&](size_t i) -> absl::Status {
    bool r = false;
    if (!batch[i]->spec.keep_package_share) RemoveLegacy(*batch[i], &r, &kept[i]);
    removed[i] = r;
    return absl::OkStatus();
  });
  for (size_t i = 0; i < batch.size(); ++i) {
    const PackageState& pkg = *batch[i];
    {
      std::lock_guard<std::mutex> lock(summary_mu_);
      ++summary_.packages_done;
      summary_.files += pkg.tree.files.size();
      summary_.bytes_stored += pkg.bytes_stored;
      summary_.bytes_deduplicated += pkg.bytes_dedup;
    }
    ImportEvent e = Event(ImportEvent::Kind::kPackageDone, pkg);
    e.bytes_stored = pkg.bytes_stored;
    e.bytes_deduplicated = pkg.bytes_dedup;
    e.legacy_removed = removed[i] != 0;
    e.legacy_kept = kept[i].Text();
    Emit(e);
  }
}

absl::Status Importer::ParallelFor(size_t n, const std::function<absl::Status(size_t)>& fn) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  absl::Status first;
  auto run = [&] {
    for (;;) {
      const size_t i = next.fetch_add(1);
      if (i >= n) return;
      absl::Status s = fn(i);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first.ok()) first = std::move(s);
        next = n;  // stop handing out work
      }
    }
  };
  std::vector<std::thread> threads;
  const size_t extra = std::min<size_t>(static_cast<size_t>(jobs_), n);
  for (size_t t = 1; t < extra; ++t) threads.emplace_back(run);
  run();
  for (auto& t : threads) t.join();
  return first;
}

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

absl::StatusOr<ImportSummary> Importer::Run(const std::vector<PackageSpec>& specs) {
  const auto start = Clock::now();
  struct stat lib_st {};
  RETURN_IF_ERROR(fs_->Fstat(lib_.lib_fd(), &lib_st));
  lib_dev_ = lib_st.st_dev;
  ASSIGN_OR_RETURN(fresh_library_, lib_.HasNoObjects());
  buffer_bytes_ = std::max<size_t>(
      kDirectIoAlign, (options_.buffer_bytes + kDirectIoAlign - 1) & ~(kDirectIoAlign - 1));
  int jobs =
      options_.jobs > 0 ? options_.jobs : static_cast<int>(std::thread::hardware_concurrency());
  if (jobs <= 0) jobs = 2;
  std::vector<std::thread> workers;
  for (int i = 0; i < jobs; ++i) workers.emplace_back([this] { WorkerLoop(); });

  absl::Status status;
  uint64_t dispatched_bytes = 0;
  size_t dispatched = 0;
  for (size_t index = 0; index < specs.size(); ++index) {
    const PackageSpec& spec = specs[index];
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!fatal_.ok()) {  // a worker or the flush thread failed
        status = fatal_;
        break;
      }
    }
    bool already = false;
    auto prepared = Prepare(spec, &already);
    if (!prepared.ok()) {
      PackageState failed;
      failed.spec = spec;
      failed.id.package_id = spec.package_id;
      failed.id.version = spec.version;
      FailPackage(failed, prepared.status());
      continue;
    }
    std::unique_ptr<PackageState> pkg = std::move(*prepared);
    if (already) {
      // Committed by an earlier run: only its legacy clean-up may be left.
      bool removed = false;
      std::string kept;
      if (!spec.keep_package_share) kept = FinishEarlierCleanUp(pkg.get(), &removed);
      {
        std::lock_guard<std::mutex> lock(summary_mu_);
        ++summary_.packages_done;
        ++summary_.packages_already;
      }
      ImportEvent e = Event(ImportEvent::Kind::kPackageDone, *pkg);
      e.already_done = true;
      e.legacy_removed = removed;
      e.legacy_kept = std::move(kept);
      Emit(e);
      continue;
    }
    Emit(Event(ImportEvent::Kind::kPackageStarted, *pkg));
    {
      std::lock_guard<std::mutex> lock(summary_mu_);
      summary_.bytes_read += pkg->tree.bytes;
    }
    batch_bytes_ += pkg->tree.bytes;
    dispatched_bytes += pkg->tree.bytes;
    ++dispatched;
    PackageState* raw = pkg.get();
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_flight_.push_back(std::move(pkg));
    }
    status = Dispatch(raw);
    if (!status.ok()) break;
    if ((batch_bytes_ >= options_.batch_bytes || in_flight_.size() >= options_.batch_packages) &&
        !SmallRemainder(specs.size() - index - 1, dispatched_bytes / dispatched)) {
      status = WaitAllInFlight();
      if (status.ok()) status = StartFlush();
      if (!status.ok()) break;
    }
  }
  if (status.ok()) status = WaitAllInFlight();
  if (status.ok()) status = StartFlush();
  {
    absl::Status flushed = WaitForFlush();
    if (status.ok()) status = flushed;
  }
  if (status.ok() && !unsynced_commit_.empty()) {
    // The last batch's commit.
    status = SpaceError(TimedSync());
    if (status.ok()) FinishCommitted(std::move(unsynced_commit_));
    unsynced_commit_.clear();
  }
  if (status.ok()) {
    // Objects that only failed packages wanted: nothing refers to them.
    for (const auto& [hash, obj] : pending_) {
      absl::Status s = obj.staged.empty()
                           ? fs_->UnlinkAt(lib_.lib_fd(), contentlib::FileLibObject(ToHex(hash)), 0)
                           : fs_->UnlinkAt(lib_.lib_fd(), obj.staged, 0);
      if (!s.ok() && !absl::IsNotFound(s) && status.ok()) status = s;
    }
    pending_.clear();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (status.ok() && !fatal_.ok()) status = fatal_;
    if (!status.ok() && fatal_.ok()) fatal_ = status;
    work_cv_.notify_all();
    space_cv_.notify_all();
  }
  for (auto& w : workers) w.join();
  if (!status.ok()) {
    // Leave no temp bytes behind; committed packages stay committed.
    for (auto& [hash, obj] : pending_) {
      if (!obj.staged.empty()) (void)fs_->UnlinkAt(lib_.lib_fd(), obj.staged, 0);
    }
    for (auto& pkg : batch_) {
      if (!pkg->staged_content.empty()) {
        (void)lib_.RemoveStagedContent(pkg->staged_content);
      }
    }
    // And any INI staged by an interrupted Flush. Nothing else writes to
    // the library during an import.
    (void)lib_.RemoveTempFiles();
    return status;
  }
  summary_.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  summary_.seconds_sync = sync_seconds_;
  summary_.seconds_publish -= sync_seconds_;
  return summary_;
}

}  // namespace

std::string_view ModeName(ImportMode mode) {
  switch (mode) {
    case ImportMode::kAuto:
      return "auto";
    case ImportMode::kCopy:
      return "copy";
    case ImportMode::kLink:
      return "link";
  }
  return "auto";
}

absl::StatusOr<ImportMode> ParseMode(std::string_view name) {
  if (name == "auto") return ImportMode::kAuto;
  if (name == "copy") return ImportMode::kCopy;
  if (name == "link") return ImportMode::kLink;
  return absl::InvalidArgumentError(
      fmt::format("unknown mode '{}' (use auto, copy or link)", name));
}

absl::StatusOr<ImportSummary> ImportPackages(ContentLibrary& lib,
                                             const std::vector<PackageSpec>& packages,
                                             const ImportOptions& options,
                                             const ImportCallback& on_event) {
  Importer importer(lib, options, on_event);
  return importer.Run(packages);
}

}  // namespace dpr::importer
