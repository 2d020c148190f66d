// One legacy file into FileLib: hashed, then linked in or copied (staged,
// written direct where it can be), and reported to its package.
#include <fcntl.h>

#include "absl/cleanup/cleanup.h"
#include "agent/contentlib/content_hash.h"
#include "agent/importer/importer_internal.h"
#include "common/status/status_macros.h"

namespace dpr::importer::internal {

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

}  // namespace dpr::importer::internal
