#include "agent/importer/importer.h"

#include <fcntl.h>
#include <sys/statvfs.h>

#include "agent/importer/importer_internal.h"
#include "common/status/status_macros.h"
#include "fmt/format.h"

namespace dpr::importer {
namespace internal {

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

}  // namespace internal

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

absl::StatusOr<ImportSummary> ImportPackages(contentlib::ContentLibrary& lib,
                                             const std::vector<PackageSpec>& packages,
                                             const ImportOptions& options,
                                             const ImportCallback& on_event) {
  internal::Importer importer(lib, options, on_event);
  return importer.Run(packages);
}

}  // namespace dpr::importer
