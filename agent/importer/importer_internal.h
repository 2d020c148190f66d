// The importer's inner parts, shared by its source files (importer.cc: the
// run, its workers and batches; importer_files.cc: one file into FileLib;
// importer_flush.cc: publishing a batch; importer_legacy.cc: the legacy
// clean-up). Not for use outside agent/importer: ImportPackages is the API.
#pragma once

#include <sys/stat.h>

#include <atomic>
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
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/contentlib/content_library.h"
#include "agent/importer/importer.h"
#include "agent/importer/tree_walker.h"
#include "fmt/format.h"

namespace dpr::importer::internal {

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

}  // namespace dpr::importer::internal
